/**
 * Producing to a TaskQueue from a pod the queue does not select ("the app posts
 * tasks to its own sidecar"). In operator mode the snapshot carries every accepted TaskQueue of
 * the namespace as producible: the producer's sidecar accepts the task, the selected worker's
 * sidecar delivers it, and producing never makes the producer a consumer or a target.
 * Real kube-apiserver (test/cluster), real redis-server, in-process operator and sidecars, real app servers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../test/helpers/eventually.ts';
import { RedisServer } from '../../test/helpers/redis-server.ts';
import { condition, startOperator, startPodWithSidecar, TestCluster, type PodWithSidecar, type StartedOperator } from './helpers/cluster.ts';

let cluster: TestCluster;
let redis: RedisServer;
let op: StartedOperator;
let producer: PodWithSidecar;
let worker: PodWithSidecar;

const ORDERS = `apiVersion: sluice.dev/v1alpha1
kind: TaskQueue
metadata:
  name: orders
  namespace: shop
spec:
  selector:
    matchLabels: {app: order-worker}
  stream: orders
  consumerGroup: order-workers
  delivery: {protocol: http, path: /tasks, timeout: 5s}
  visibilityTimeout: 30s
`;

interface QueueStatus { consumers: unknown[]; producible: string[] }
const queueStatus = async (p: PodWithSidecar) =>
  ((await (await fetch(`${p.localApi}/v1/status`)).json()) as { features: { queue: QueueStatus } }).features.queue;
const config = async (p: PodWithSidecar) =>
  (await (await fetch(`${p.admin}/config`)).json()) as { version: string; rules: { taskQueues: string[] } };

async function post(p: PodWithSidecar, body: unknown): Promise<{ status: number; json: { id?: string; code?: string } }> {
  const res = await fetch(`${p.localApi}/v1/queues/orders/tasks`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as { id?: string; code?: string } };
}

const tasksReceived = (p: PodWithSidecar) => p.app.received.filter((r) => r.url === '/tasks');

beforeAll(async () => {
  [cluster, redis] = await Promise.all([TestCluster.start(), RedisServer.start()]);
  op = await startOperator(cluster, { redis: redis.url });
  producer = await startPodWithSidecar(cluster, op.address, 'shop', 'order-api-1', { app: 'order-api' }, { redis: redis.url });
  worker = await startPodWithSidecar(cluster, op.address, 'shop', 'order-worker-1', { app: 'order-worker' }, { redis: redis.url });
});

afterAll(async () => {
  await producer?.stop();
  await worker?.stop();
  await op?.operator.stop();
  await Promise.all([cluster?.stop(), redis?.stop()]);
});

describe('producing to a TaskQueue that does not select the pod (operator mode)', () => {
  it('before the TaskQueue exists, posting to it is 404', async () => {
    await eventually(async () => expect((await fetch(`${producer.admin}/readyz`)).status).toBe(200));
    expect(await post(producer, { order: 0 })).toMatchObject({ status: 404, json: { code: 'SLUICE_ERR_QUEUE_NOT_FOUND' } });
  });

  it('the producer gets the queue as producible only; the worker consumes it; targets count the worker alone', async () => {
    const before = (await config(producer)).version;
    await cluster.apply(ORDERS);
    await eventually(async () => {
      const s = await cluster.getStatus('taskqueues', 'shop', 'orders');
      expect(condition(s, 'Accepted')?.status).toBe('True');
      expect(s.targets).toEqual({ selected: 1, programmed: 1 });
      // A new snapshot version was pushed to the producer because its producible set changed.
      expect((await config(producer)).version).not.toBe(before);
      expect(await queueStatus(producer)).toMatchObject({ consumers: [], producible: ['shop/orders'] });
      expect((await queueStatus(worker)).consumers).toHaveLength(1);
    });
    // The producer enforces nothing new: the queue is not among its rules.
    expect((await config(producer)).rules.taskQueues).toEqual([]);
    expect((await config(worker)).rules.taskQueues).toEqual(['shop/orders']);
  });

  it('a task posted on the producer\'s sidecar is delivered to the worker\'s app, never to the producer\'s', async () => {
    const posted = await post(producer, { order: 42 });
    expect(posted.status).toBe(202);
    expect(posted.json.id).toEqual(expect.any(String));
    await eventually(() => {
      const got = tasksReceived(worker);
      expect(got).toHaveLength(1);
      expect(got[0]!.headers['sluice-task-id']).toBe(posted.json.id);
      expect(JSON.parse(got[0]!.body)).toEqual({ order: 42 });
    });
    await sleep(300);
    expect(tasksReceived(producer)).toEqual([]);
    expect(tasksReceived(worker)).toHaveLength(1);
  });

  it('deleting the TaskQueue makes it unproducible again', async () => {
    await cluster.kubectl('delete', 'taskqueue', 'orders', '-n', 'shop');
    await eventually(async () => {
      expect((await queueStatus(producer)).producible).toEqual([]);
      expect(await post(producer, { order: 43 })).toMatchObject({ status: 404 });
    });
  });
});
