/**
 * LeaderLease against the real API server: one leader at a time, takeover after the lease runs
 * out when the leader vanishes, immediate takeover when it releases on a clean stop.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually, sleep } from '../../test/helpers/eventually.ts';
import { silentLogger } from '../../lib/log.ts';
import type { KubeClient } from '../src/kube-client.ts';
import { LeaderLease } from '../src/leader-lease.ts';
import { TestCluster } from './helpers/cluster.ts';

let cluster: TestCluster;
let client: KubeClient;
const leases: LeaderLease[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start(['lease-test']);
  client = cluster.client;
});

afterAll(async () => {
  for (const l of leases) await l.stop({ release: false });
  await cluster?.stop();
});

function candidate(name: string, identity: string, log: string[], leaseDurationMs = 1_000): LeaderLease {
  const l = new LeaderLease({
    client, namespace: 'lease-test', name, identity,
    leaseDurationMs, renewDeadlineMs: leaseDurationMs * 0.7, retryPeriodMs: 100,
    onStartedLeading: () => log.push(`${identity}+`),
    onStoppedLeading: () => log.push(`${identity}-`),
    logger: silentLogger,
  });
  leases.push(l);
  return l;
}

it('elects exactly one leader, and a follower takes over only after the lease ran out', async () => {
  const log: string[] = [];
  const a = candidate('lease-1', 'a', log);
  const b = candidate('lease-1', 'b', log);
  a.start();
  await eventually(() => expect(a.isLeader).toBe(true));
  b.start();
  let both = false;
  const sampler = setInterval(() => (both ||= a.isLeader && b.isLeader), 5);
  await sleep(1_500); // longer than the lease: a keeps renewing, b must not take over
  expect(b.isLeader).toBe(false);
  expect(b.holder).toBe('a');

  // a vanishes without releasing (like SIGKILL): b waits out the lease, then leads.
  await a.stop({ release: false });
  await eventually(() => expect(b.isLeader).toBe(true), { timeoutMs: 5_000 });
  clearInterval(sampler);
  expect(both).toBe(false);
  const lease = await client.get('/apis/coordination.k8s.io/v1/namespaces/lease-test/leases/lease-1');
  expect(lease.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
  expect(log).toEqual(['a+', 'a-', 'b+']);
});

it('a leader that releases on stop is succeeded at once', async () => {
  const log: string[] = [];
  // A 60 s lease: b can only lead within the wait below if a really released it.
  const a = candidate('lease-2', 'a', log, 60_000);
  const b = candidate('lease-2', 'b', log, 60_000);
  a.start();
  await eventually(() => expect(a.isLeader).toBe(true));
  b.start();
  await sleep(300);
  await a.stop({ release: true });
  await eventually(() => expect(b.isLeader).toBe(true), { timeoutMs: 10_000 });
  expect(log).toEqual(['a+', 'a-', 'b+']);
});
