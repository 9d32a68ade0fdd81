/**
 * The kinds of examples/policies.yaml, applied with kubectl, get honest status: every
 * document Accepted, and Programmed once the selected pods' sidecars acknowledged them.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually } from '../../test/helpers/eventually.ts';
import { condition, startOperator, startPodWithSidecar, TestCluster, type PodWithSidecar, type StartedOperator } from './helpers/cluster.ts';

const EXAMPLES = new URL('../../examples/policies.yaml', import.meta.url);

let cluster: TestCluster;
let op: StartedOperator;
const pods: PodWithSidecar[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start();
  op = await startOperator(cluster);
  for (const app of ['user-service', 'order-worker', 'push-hub', 'ledger']) pods.push(await startPodWithSidecar(cluster, op.address, 'shop', `${app}-1`, { app }));
});

afterAll(async () => {
  for (const p of pods) await p.stop();
  await op?.operator.stop();
  await cluster?.stop();
});

it('kubectl apply of the examples → every kind Accepted and Programmed on their pods', async () => {
  await cluster.apply(readFileSync(EXAMPLES, 'utf8'));
  const resources = [['ratelimitpolicies', 'user-api'], ['circuitbreakerpolicies', 'user-api'], ['taskqueues', 'orders'], ['leaderelections', 'push-broadcaster'], ['fencingpolicies', 'ledger']] as const;
  await eventually(async () => {
    for (const [plural, name] of resources) {
      const s = await cluster.getStatus(plural, 'shop', name);
      expect(condition(s, 'Accepted'), `${plural}/${name}`).toMatchObject({ status: 'True', reason: 'Accepted' });
      expect(condition(s, 'Programmed'), `${plural}/${name}`).toMatchObject({ status: 'True', reason: 'Programmed' });
      expect(s.targets, `${plural}/${name}`).toEqual({ selected: 1, programmed: 1 });
      expect(s.observedGeneration).toBe(1);
    }
  }, { timeoutMs: 15_000 });
  const userService = (await (await fetch(`${pods[0]!.admin}/config`)).json()) as { rules: Record<string, string[]> };
  expect(userService.rules.rateLimits).toEqual(['shop/user-api/per-user', 'shop/user-api/get-user-rpc', 'shop/user-api/push-sockets']);
  expect(userService.rules.circuitBreakers).toEqual(['shop/user-api/backend']);
  expect(userService.rules.taskQueues).toEqual([]);
  const ledger = (await (await fetch(`${pods[3]!.admin}/config`)).json()) as { rules: Record<string, string[]> };
  expect(ledger.rules.fencing).toEqual(['shop/ledger/writes']);
  expect(userService.rules.fencing).toEqual([]);
  expect(await cluster.kubectl('get', 'fencingpolicies', '-n', 'shop')).toMatch(/ledger\s+push-broadcaster\s+True\s+True\s+1\s+1/);
  const table = await cluster.kubectl('get', 'ratelimitpolicies,circuitbreakerpolicies', '-n', 'shop');
  expect(table).toMatch(/user-api\s+Enforce\s+True\s+True\s+1\s+1/);
});
