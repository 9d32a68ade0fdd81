/**
 * The leader label cannot be seized with a made-up report. A pod the election selects, with its
 * own valid token, opens a discovery stream and claims leadership with a fencing token the lock
 * nodes never issued and a validUntil in 2099: the operator, which reads the fencing counter on
 * the lock nodes, refuses it. A claim whose token the nodes did issue is believed, but only for one
 * ttl after its report unless renewed — never until 2099.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { startRedisServers, type RedisServer } from '../../../test/helpers/redis-server.ts';
import { policyDiscovery, type PolicyDiscoveryClient } from '../../../lib/proto/discovery.ts';
import { electionResource, fenceKey } from '../../../lib/redis/key-layout.ts';
import { LEADER_LABEL } from '../../src/leader-election/leader-election-reconciler.ts';
import { startOperator, TestCluster, type StartedOperator } from '../helpers/cluster.ts';

let cluster: TestCluster;
let nodes: RedisServer[];
let op: StartedOperator;
const clients: PolicyDiscoveryClient[] = [];

const ELECTION = `apiVersion: sluice.dev/v1alpha1
kind: LeaderElection
metadata: {name: push-broadcaster, namespace: shop}
spec:
  selector: {matchLabels: {app: push-hub}}
  ttl: 2s
  renewEvery: 500ms
`;

async function labelled(): Promise<string[]> {
  const pods = await cluster.client.list('/api/v1/namespaces/shop/pods', { labelSelector: `${LEADER_LABEL}=push-broadcaster` });
  return pods.items.map((p) => p.metadata.name).sort();
}

/** A pod's own authenticated discovery stream, over which it sends one leadership report. */
async function claimLeadership(podName: string, fencingToken: number, validUntil: string): Promise<void> {
  const pod = await cluster.client.get(`/api/v1/namespaces/shop/pods/${podName}`);
  const token = readFileSync(await cluster.tokenFileFor(pod), 'utf8').trim();
  const client = new (policyDiscovery().Client)(op.address, grpc.credentials.createInsecure());
  clients.push(client);
  const call = client.streamPolicies();
  call.on('error', () => {});
  const snapshot = new Promise<void>((resolve) => call.once('data', () => resolve()));
  call.write({ hello: { podNamespace: 'shop', podName, token, sidecarId: podName, currentVersion: '' } });
  await snapshot; // authenticated: the operator sent the pod its snapshot
  call.write({ report: { json: JSON.stringify({ leadership: { elections: [{ election: 'shop/push-broadcaster', leader: true, fencingToken, validUntil }] } }) } });
}

beforeAll(async () => {
  [cluster, nodes] = await Promise.all([TestCluster.start(), startRedisServers(3)]);
  op = await startOperator(cluster, { lockNodes: nodes.map((n) => n.url) });
  await cluster.createPod('shop', 'mallory', { app: 'push-hub' });
  await cluster.createPod('shop', 'hub-a', { app: 'push-hub' });
  await cluster.apply(ELECTION);
  await eventually(async () => expect(await (await fetch(`${op.admin}/readyz`)).json()).toMatchObject({ isLeader: true }), { timeoutMs: 20_000 });
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await op?.operator.stop();
  await Promise.all([cluster?.stop(), ...(nodes ?? []).map((n) => n.stop())]);
});

describe('leader-label forgery', () => {
  it('a made-up fencing token with validUntil 2099 does not make its pod the leader', async () => {
    await claimLeadership('mallory', 999_999, '2099-01-01T00:00:00Z');
    await sleep(1_500);
    expect(await labelled()).toEqual([]);
    const status = await cluster.getStatus('leaderelections', 'shop', 'push-broadcaster');
    expect(status.holder ?? null).toBeNull();
  });

  it('a token the lock nodes issued is believed, for one ttl after its report, not until 2099', async () => {
    // What an acquisition leaves on the nodes: the election's fencing counter at 7.
    await Promise.all(nodes.map(async (n) => {
      const r = new Redis(n.url);
      await r.set(fenceKey(electionResource('shop', 'push-broadcaster')), '7');
      r.disconnect();
    }));
    await claimLeadership('hub-a', 7, '2099-01-01T00:00:00Z');
    await eventually(async () => expect(await labelled()).toEqual(['hub-a']), { timeoutMs: 15_000 });
    // Status is written after the label, by the same reconcile: it may lag the label briefly.
    await eventually(async () => expect((await cluster.getStatus('leaderelections', 'shop', 'push-broadcaster')).fencingToken).toBe(7));
    // The forger tries again above the real holder: still a token nobody issued.
    await claimLeadership('mallory', 8, '2099-01-01T00:00:00Z');
    await sleep(1_000);
    expect(await labelled()).toEqual(['hub-a']);
    // hub-a does not renew: its claim lapses one ttl (2 s) after its report, whatever it said.
    await eventually(async () => expect(await labelled()).toEqual([]), { timeoutMs: 15_000 });
  });
});
