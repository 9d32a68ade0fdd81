/**
 * Every kind tells its condition transitions with one rule (conditions.ts eventType): a TaskQueue
 * applied before its workers exist is Programmed=False NoTargets like any policy — a Normal Event,
 * not a Warning — while its Ready=False (no Redis) is one.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually } from '../../test/helpers/eventually.ts';
import { condition, rateLimitPolicy, startOperator, TestCluster, type StartedOperator } from './helpers/cluster.ts';

const NS = 'condition-events';
let cluster: TestCluster;
let op: StartedOperator;

beforeAll(async () => {
  cluster = await TestCluster.start([NS]);
  op = await startOperator(cluster);
});

afterAll(async () => {
  await op?.operator.stop();
  await cluster?.stop();
});

async function events(name: string): Promise<{ reason: string; type: string; message: string }[]> {
  const out = await cluster.kubectl('get', 'events', '-n', NS, '--field-selector', `involvedObject.name=${name}`, '-o', 'json');
  return JSON.parse(out).items as { reason: string; type: string; message: string }[];
}

it('Programmed=False NoTargets is a Normal Event for a TaskQueue as for a RateLimitPolicy; Ready=False is a Warning', async () => {
  await cluster.apply(rateLimitPolicy('nobody', { requests: 5, selector: { app: 'nobody' }, namespace: NS }));
  await cluster.apply(`apiVersion: sluice.dev/v1alpha1
kind: TaskQueue
metadata: {name: orders, namespace: ${NS}}
spec:
  selector: {matchLabels: {app: no-workers-yet}}
  stream: orders
  consumerGroup: orders-workers
  delivery: {protocol: http, path: /tasks}
`);
  await eventually(async () => {
    expect(condition(await cluster.getStatus('taskqueues', NS, 'orders'), 'Programmed')).toMatchObject({ status: 'False', reason: 'NoTargets' });
    expect(condition(await cluster.getStatus('ratelimitpolicies', NS, 'nobody'), 'Programmed')).toMatchObject({ status: 'False', reason: 'NoTargets' });
  });
  await eventually(async () => {
    const queue = await events('orders');
    expect(queue.filter((e) => e.reason === 'NoTargets').map((e) => e.type)).toEqual(['Normal']);
    expect(queue.filter((e) => e.reason === 'RedisNotConfigured').map((e) => e.type)).toEqual(['Warning']);
    expect((await events('nobody')).filter((e) => e.reason === 'NoTargets').map((e) => e.type)).toEqual(['Normal']);
  });
});
