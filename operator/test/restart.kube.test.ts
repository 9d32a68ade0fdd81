/**
 * The operator dies (SIGKILL) and comes back: sidecars never stop enforcing their last snapshot,
 * then resync — including a change made while the operator was away.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually, sleep } from '../../test/helpers/eventually.ts';
import { freePort } from '../../lib/net.ts';
import { condition, rateLimitPolicy, startPodWithSidecar, statuses, TestCluster, type PodWithSidecar } from './helpers/cluster.ts';
import { spawnOperator, type OperatorProcess } from './helpers/operator-process.ts';

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

interface ConfigView { version: string; rules: { rateLimits: string[] } }
const config = async (p: PodWithSidecar) => (await (await fetch(`${p.admin}/config`)).json()) as ConfigView;

it('operator killed and restarted → enforcement never lapses and sidecars resync', async () => {
  const ports = { discovery: await freePort(), admin: await freePort() };
  operators.push(await spawnOperator(cluster, 'operator-a', ports));
  const address = operators[0]!.address;
  pods.push(await startPodWithSidecar(cluster, address, 'shop', 'web-1', { app: 'web' }));
  pods.push(await startPodWithSidecar(cluster, address, 'shop', 'web-2', { app: 'web' }));
  const [web1, web2] = pods as [PodWithSidecar, PodWithSidecar];

  await cluster.apply(rateLimitPolicy('api-limit', { requests: 3 }));
  await eventually(async () => {
    const s = await cluster.getStatus('ratelimitpolicies', 'shop', 'api-limit');
    expect(condition(s, 'Programmed')).toMatchObject({ status: 'True', observedGeneration: 1 });
  }, { timeoutMs: 15_000 });
  expect(await statuses(web1.url, 4)).toEqual([200, 200, 200, 429]);
  const before = (await config(web2)).version;

  // Watch web-2's config throughout: it must never fall back to an empty or missing plan.
  const seen = new Set<string>();
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const c = await config(web2);
      seen.add(c.rules.rateLimits.length === 0 ? 'EMPTY' : c.version);
      await sleep(20);
    }
  })();

  await operators[0]!.kill('SIGKILL');
  // Away: the limit still holds (same counters), readiness holds, and an edit made now waits.
  await sleep(300);
  expect(await statuses(web1.url, 1)).toEqual([429]);
  expect((await fetch(`${web1.admin}/readyz`)).status).toBe(200);
  await cluster.apply(rateLimitPolicy('api-limit', { requests: 6 }));
  await sleep(300);
  expect((await config(web2)).version).toBe(before);

  // A new replica (new pod name, as a Deployment would create) on the same Service address.
  operators.push(await spawnOperator(cluster, 'operator-b', ports));
  await eventually(async () => {
    const s = await cluster.getStatus('ratelimitpolicies', 'shop', 'api-limit');
    expect(condition(s, 'Programmed')).toMatchObject({ status: 'True', observedGeneration: 2 });
    expect(s.targets).toEqual({ selected: 2, programmed: 2 });
  }, { timeoutMs: 20_000 });
  watching = false;
  await watcher;
  const after = (await config(web2)).version;
  expect(after).not.toBe(before);
  expect(seen.has('EMPTY')).toBe(false);
  expect([...seen].every((v) => v === before || v === after)).toBe(true);
  expect(await statuses(web1.url, 7)).toEqual([200, 200, 200, 200, 200, 200, 429]);
}, 90_000);
