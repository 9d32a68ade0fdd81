/**
 * Hellos that do not authenticate cost the operator a TokenReview each: past a per-source budget
 * they are refused before any TokenReview (RESOURCE_EXHAUSTED), while the bucket logic itself is
 * checked on a manual clock.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/clock.ts';
import { policyDiscovery } from '../../lib/proto/discovery.ts';
import { AuthThrottle, sourceOf } from '../src/auth-throttle.ts';
import { startOperator, TestCluster, type StartedOperator } from './helpers/cluster.ts';
import { eventually } from '../../test/helpers/eventually.ts';

describe('AuthThrottle', () => {
  it('spends a token per authentication in flight or failed, gives it back on success, refills over time', () => {
    const clock = new ManualClock();
    const t = new AuthThrottle({ clock, burst: 3, perSecond: 1 });
    for (let i = 0; i < 3; i++) expect(t.take('10.0.0.1')).toBe(true);
    expect(t.take('10.0.0.1')).toBe(false);
    expect(t.retryAfterSeconds('10.0.0.1')).toBe(1);
    expect(t.take('10.0.0.2')).toBe(true); // another source has its own budget
    t.refund('10.0.0.1');
    expect(t.take('10.0.0.1')).toBe(true);
    expect(t.take('10.0.0.1')).toBe(false);
    clock.advance(2_000);
    expect(t.take('10.0.0.1')).toBe(true);
    expect(t.take('10.0.0.1')).toBe(true);
    expect(t.take('10.0.0.1')).toBe(false);
  });

  it('keeps at most maxSources buckets', () => {
    const clock = new ManualClock();
    const t = new AuthThrottle({ clock, burst: 1, perSecond: 1, maxSources: 2 });
    expect(t.take('a')).toBe(true);
    expect(t.take('b')).toBe(true);
    expect(t.take('c')).toBe(true);
    expect(t.take('c')).toBe(false);
  });

  it.each([
    ['ipv4:10.1.2.3:51234', '10.1.2.3'],
    ['ipv6:[::1]:5000', '[::1]'],
    ['127.0.0.1:9', '127.0.0.1'],
  ])('the source of %s is %s', (peer, source) => expect(sourceOf(peer)).toBe(source));
});

let cluster: TestCluster;
let op: StartedOperator;

beforeAll(async () => {
  cluster = await TestCluster.start();
  op = await startOperator(cluster);
});
afterAll(async () => {
  await op?.operator.stop();
  await cluster?.stop();
});

/** One discovery stream with a forged token: the gRPC status it ends with. */
function forgedHello(): Promise<number> {
  const client = new (policyDiscovery().Client)(op.address, grpc.credentials.createInsecure());
  return new Promise<number>((resolve) => {
    const call = client.streamPolicies();
    call.on('data', () => {});
    call.on('error', (err: grpc.ServiceError) => {
      client.close();
      resolve(err.code);
    });
    call.write({ hello: { podNamespace: 'shop', podName: 'web-1', token: 'forged', sidecarId: 'x', currentVersion: '' } });
  });
}

describe('discovery hellos that do not authenticate', () => {
  it('are refused before a TokenReview once a source has spent its budget', async () => {
    await eventually(async () => expect(await (await fetch(`${op.admin}/readyz`)).json()).toMatchObject({ isLeader: true }), { timeoutMs: 20_000 });
    // Thirty at once from one address: the default budget is 20 (refilling at 2/s), so about ten
    // are refused before their TokenReview; every other one is refused by the TokenReview itself.
    const codes = await Promise.all(Array.from({ length: 30 }, () => forgedHello()));
    const exhausted = codes.filter((c) => c === grpc.status.RESOURCE_EXHAUSTED).length;
    expect(exhausted).toBeGreaterThanOrEqual(5);
    expect(codes.filter((c) => c === grpc.status.UNAUTHENTICATED)).toHaveLength(30 - exhausted);
  });
});
