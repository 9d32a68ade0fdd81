/**
 * The leader label follows a failover of real sidecars: two `sluice-proxy` processes in operator
 * mode, RedLock over three real redis-servers, a LeaderElection applied with kubectl. The pod whose
 * sidecar leads carries sluice.dev/leader=<name>; kill it and the label moves to the other pod with
 * a higher fencing token in status; when no sidecar renews any more, the label goes and status
 * shows no holder.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/eventually.ts';
import { startRedisServers, type RedisServer } from '../../../test/helpers/redis-server.ts';
import { spawnSidecar, type SidecarProcess } from '../../../test/helpers/sidecar-process.ts';
import { LEADER_LABEL } from '../../src/leader-election/leader-election-reconciler.ts';
import { condition, startOperator, TestCluster, type StartedOperator } from '../helpers/cluster.ts';

let cluster: TestCluster;
let nodes: RedisServer[];
let op: StartedOperator;
const sidecars = new Map<string, SidecarProcess>();

const ELECTION = `apiVersion: sluice.dev/v1alpha1
kind: LeaderElection
metadata:
  name: push-broadcaster
  namespace: shop
spec:
  selector:
    matchLabels: {app: push-hub}
  ttl: 2s
  renewEvery: 500ms
`;

async function labelled(): Promise<string[]> {
  const pods = await cluster.client.list('/api/v1/namespaces/shop/pods', { labelSelector: `${LEADER_LABEL}=push-broadcaster` });
  return pods.items.map((p) => p.metadata.name).sort();
}

async function startSidecarFor(name: string): Promise<void> {
  const pod = await cluster.createPod('shop', name, { app: 'push-hub' });
  sidecars.set(name, await spawnSidecar([
    '--operator', op.address,
    '--pod-name', name, '--pod-namespace', 'shop', '--token-file', await cluster.tokenFileFor(pod),
    '--lock-nodes', nodes.map((n) => n.url).join(','),
    '--id', name,
    '--log-level', 'warn',
  ]));
}

beforeAll(async () => {
  [cluster, nodes] = await Promise.all([TestCluster.start(), startRedisServers(3)]);
  op = await startOperator(cluster);
  // A pod the election does not select: a claim from it would be ignored, and it never gets the label.
  await cluster.createPod('shop', 'bystander', { app: 'other' });
  await Promise.all([startSidecarFor('hub-a'), startSidecarFor('hub-b')]);
  await cluster.apply(ELECTION);
}, 60_000);

afterAll(async () => {
  for (const s of sidecars.values()) s.kill('SIGKILL');
  await Promise.all([...sidecars.values()].map((s) => s.exited));
  await op?.operator.stop();
  await Promise.all([cluster?.stop(), ...(nodes ?? []).map((n) => n.stop())]);
});

describe('LeaderElection reconciler with real sidecars', () => {
  let first: string;
  let firstToken: number;

  it('labels the pod whose sidecar leads, and status names it with its fencing token', async () => {
    const s = await eventually(async () => {
      const status = await cluster.getStatus('leaderelections', 'shop', 'push-broadcaster');
      expect(condition(status, 'Elected')).toMatchObject({ status: 'True', reason: 'LeaderElected' });
      expect(await labelled()).toEqual([status.holder]);
      return status;
    }, { timeoutMs: 20_000 });
    first = s.holder;
    firstToken = s.fencingToken;
    expect(['hub-a', 'hub-b']).toContain(first);
    expect(s.transitions).toBe(1);
    expect(s.lastTransitionTime).toMatch(/^\d{4}-\d\d-\d\dT/);
    // The sidecar agrees: it is the leader, with the same token.
    const leadership = await (await fetch(`${sidecars.get(first)!.admin}/v1/leadership`)).json() as { elections: { election: string; leader: boolean; fencingToken: number }[] };
    expect(leadership.elections.find((e) => e.election === 'shop/push-broadcaster')).toMatchObject({ leader: true, fencingToken: firstToken });
    const table = await cluster.kubectl('get', 'leaderelections', '-n', 'shop');
    expect(table).toMatch(new RegExp(`push-broadcaster\\s+${first}\\s+${firstToken}`));
  });

  it('SIGKILL of the leader: the label moves to the other pod, with a higher token', async () => {
    const other = first === 'hub-a' ? 'hub-b' : 'hub-a';
    sidecars.get(first)!.kill('SIGKILL');
    await sidecars.get(first)!.exited;
    const s = await eventually(async () => {
      const status = await cluster.getStatus('leaderelections', 'shop', 'push-broadcaster');
      expect(status.holder).toBe(other);
      expect(await labelled()).toEqual([other]);
      return status;
    }, { timeoutMs: 20_000 });
    expect(s.fencingToken).toBeGreaterThan(firstToken);
    expect(s.transitions).toBe(2);
    expect(condition(s, 'Elected')).toMatchObject({ status: 'True', reason: 'LeaderElected' });
    const events = JSON.parse(await cluster.kubectl('get', 'events', '-n', 'shop', '--field-selector', 'involvedObject.name=push-broadcaster', '-o', 'json'));
    expect((events.items as { reason: string }[]).some((e) => e.reason === 'LeaderChanged')).toBe(true);
  });

  it('when no sidecar renews any more, the lease expires: no label, no holder', async () => {
    const last = first === 'hub-a' ? 'hub-b' : 'hub-a';
    const token = (await cluster.getStatus('leaderelections', 'shop', 'push-broadcaster')).fencingToken;
    // SIGSTOP: the stream stays open and nothing says goodbye; only validUntil can tell.
    sidecars.get(last)!.kill('SIGSTOP');
    try {
      await eventually(async () => {
        const status = await cluster.getStatus('leaderelections', 'shop', 'push-broadcaster');
        expect(status.holder).toBeUndefined();
        expect(condition(status, 'Elected')).toMatchObject({ status: 'False', reason: 'NoLeader' });
        expect(status.fencingToken).toBe(token);
        expect(await labelled()).toEqual([]);
      }, { timeoutMs: 15_000 });
    } finally {
      sidecars.get(last)!.kill('SIGCONT');
    }
  });

  it('SIGTERM of the leader hands over: the restarted pod gets the label with a higher token', async () => {
    const leader = first === 'hub-a' ? 'hub-b' : 'hub-a';
    // The resumed sidecar campaigns again and wins a new term.
    const resumed = await eventually(async () => {
      const status = await cluster.getStatus('leaderelections', 'shop', 'push-broadcaster');
      expect(status.holder).toBe(leader);
      expect(await labelled()).toEqual([leader]);
      return status;
    }, { timeoutMs: 15_000 });
    // The first pod's sidecar comes back (a container restart) as a follower.
    const pod = await cluster.client.get(`/api/v1/namespaces/shop/pods/${first}`);
    sidecars.set(first, await spawnSidecar([
      '--operator', op.address,
      '--pod-name', first, '--pod-namespace', 'shop', '--token-file', await cluster.tokenFileFor(pod),
      '--lock-nodes', nodes.map((n) => n.url).join(','), '--id', `${first}-2`, '--log-level', 'warn',
    ]));
    sidecars.get(leader)!.kill('SIGTERM');
    expect((await sidecars.get(leader)!.exited).code).toBe(0);
    const s = await eventually(async () => {
      const status = await cluster.getStatus('leaderelections', 'shop', 'push-broadcaster');
      expect(status.holder).toBe(first);
      expect(await labelled()).toEqual([first]);
      return status;
    }, { timeoutMs: 15_000 });
    expect(s.fencingToken).toBeGreaterThan(resumed.fencingToken);
    expect(s.transitions).toBeGreaterThan(resumed.transitions);
  });
});
