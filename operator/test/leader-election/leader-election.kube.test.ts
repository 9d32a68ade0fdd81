/**
 * Two operator replicas: exactly one leads (holds the Lease, reconciles, serves discovery); when
 * it dies the other takes over, sidecars follow it, and status keeps telling the truth.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/eventually.ts';
import { condition, rateLimitPolicy, startPodWithSidecar, statuses, TestCluster, type PodWithSidecar } from '../helpers/cluster.ts';
import { OPERATOR_RELEASE } from '../../../test/cluster/cluster-info.ts';
import { spawnOperator, type OperatorProcess } from '../helpers/operator-process.ts';

let cluster: TestCluster;
const pods: PodWithSidecar[] = [];
const operators: OperatorProcess[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start();
});

afterAll(async () => {
  for (const p of pods) await p.stop();
  for (const o of operators) await o.kill();
  await cluster?.stop();
});

async function leaders(): Promise<string[]> {
  const out: string[] = [];
  for (const o of operators) if ((await o.readyz())?.isLeader) out.push(o.id);
  return out;
}

it('two replicas: one leads, the other takes over when it dies', async () => {
  operators.push(...(await Promise.all([spawnOperator(cluster, 'replica-1'), spawnOperator(cluster, 'replica-2')])));
  const first = await eventually(async () => {
    const l = await leaders();
    expect(l).toHaveLength(1);
    return l[0] as string;
  }, { timeoutMs: 15_000 });
  const lease = JSON.parse(await cluster.kubectl('get', 'lease', OPERATOR_RELEASE.leaseName, '-n', OPERATOR_RELEASE.namespace, '-o', 'json'));
  expect(lease.spec.holderIdentity).toBe(first);

  // The sidecar knows both replicas (as through a Service); the follower turns it away.
  const web = await startPodWithSidecar(cluster, operators.map((o) => o.address).join(','), 'shop', 'web-1', { app: 'web' });
  pods.push(web);
  await cluster.apply(rateLimitPolicy('api-limit', { requests: 2 }));
  await eventually(async () => {
    expect(condition(await cluster.getStatus('ratelimitpolicies', 'shop', 'api-limit'), 'Programmed')).toMatchObject({ status: 'True', observedGeneration: 1 });
  }, { timeoutMs: 15_000 });
  expect(await statuses(web.url, 3)).toEqual([200, 200, 429]);

  const leader = operators.find((o) => o.id === first)!;
  const survivor = operators.find((o) => o.id !== first)!;
  await leader.kill('SIGKILL');
  await eventually(async () => expect((await survivor.readyz())?.isLeader).toBe(true), { timeoutMs: 15_000 });
  const after = JSON.parse(await cluster.kubectl('get', 'lease', OPERATOR_RELEASE.leaseName, '-n', OPERATOR_RELEASE.namespace, '-o', 'json'));
  expect(after.spec.holderIdentity).toBe(survivor.id);
  expect(after.spec.leaseTransitions).toBeGreaterThanOrEqual(1);

  // The new leader serves the sidecar and writes status for the next generation.
  await cluster.apply(rateLimitPolicy('api-limit', { requests: 4 }));
  await eventually(async () => {
    const s = await cluster.getStatus('ratelimitpolicies', 'shop', 'api-limit');
    expect(condition(s, 'Programmed')).toMatchObject({ status: 'True', observedGeneration: 2 });
    expect(s.targets).toEqual({ selected: 1, programmed: 1 });
  }, { timeoutMs: 20_000 });
  expect(await statuses(web.url, 5)).toEqual([200, 200, 200, 200, 429]);
}, 90_000);
