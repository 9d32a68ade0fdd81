/**
 * The kubectl path of a dead-letter redrive, against the real control plane, a real redis-server
 * and a real worker sidecar (discovery from the operator): `kubectl annotate`, the operator hands
 * the redrive to the worker over its discovery stream, the worker moves the dead letters back,
 * status.redrive reports progress, a value is acted on once, and a bad value is refused in status.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { RedisServer } from '../../../test/helpers/redis-server.ts';
import { queueKeys } from '../../../lib/redis/key-layout.ts';
import { startOperator, startPodWithSidecar, TestCluster, type PodWithSidecar, type StartedOperator } from '../helpers/cluster.ts';

let cluster: TestCluster;
let redis: RedisServer;
let op: StartedOperator;
let client: Redis;
let worker: PodWithSidecar;

const TASK_QUEUES = '/apis/sluice.dev/v1alpha1/namespaces/shop/taskqueues';
const keys = queueKeys({ namespace: 'shop', stream: 'shop.refunds', deadLetterStream: 'shop.refunds.dlq' });

async function statusOf(): Promise<{ redrive?: Record<string, unknown>; deadLetters?: number }> {
  return ((await cluster.client.get<any>(`${TASK_QUEUES}/refunds`)).status ?? {}) as { redrive?: Record<string, unknown> };
}

function tasksAtApp(): string[] {
  return worker.app.received.filter((r) => r.url === '/tasks').map((r) => String(r.headers['sluice-task-id']));
}

beforeAll(async () => {
  [cluster, redis] = await Promise.all([TestCluster.start(), RedisServer.start()]);
  client = new Redis(redis.url);
  op = await startOperator(cluster, { redis: redis.url, queueResyncMs: 200 });
  await cluster.client.create(TASK_QUEUES, {
    apiVersion: 'sluice.dev/v1alpha1', kind: 'TaskQueue',
    metadata: { name: 'refunds', namespace: 'shop' },
    spec: {
      selector: { matchLabels: { app: 'refunds' } },
      stream: 'shop.refunds', consumerGroup: 'refund-workers',
      delivery: { protocol: 'http', path: '/tasks', timeout: '5s' },
      deadLetter: { stream: 'shop.refunds.dlq' },
      visibilityTimeout: '5s',
    },
  });
  worker = await startPodWithSidecar(cluster, op.address, 'shop', 'refund-worker-1', { app: 'refunds' }, { redis: redis.url });
  // Dead letters as the sidecar writes them: 20 that failed with 500s, 5 the app refused (422).
  for (let n = 0; n < 25; n++) {
    const error = n < 20 ? 'http 500' : 'http 422';
    await client.xadd(keys.deadLetter!, '*', 'p', JSON.stringify({ n }), 'i', `task-${n}`, 'queue', 'shop/refunds', 'originalId', `task-${n}`,
      'attempts', '3', 'error', error, 'cause', n < 20 ? 'exhausted' : 'permanent', 'consumer', 'gone', 'failedAt', new Date().toISOString());
  }
  await eventually(async () => expect((await statusOf()).deadLetters).toBe(25), { timeoutMs: 30_000 });
}, 180_000);

afterAll(async () => {
  await worker?.stop();
  await op?.operator.stop();
  client?.disconnect();
  await redis?.stop();
  await cluster?.stop();
});

describe('dead-letter redrive from kubectl', () => {
  it('kubectl annotate starts it, a worker sidecar moves the matching dead letters back once, status reports the progress', { timeout: 120_000 }, async () => {
    await cluster.kubectl('-n', 'shop', 'annotate', 'taskqueue', 'refunds', 'sluice.dev/redrive={"perSecond": 50, "error": "http 5"}');
    await eventually(async () => expect((await statusOf()).redrive).toMatchObject({ state: 'done', moved: 20, skipped: 5 }), { timeoutMs: 60_000, intervalMs: 200 });
    const status = (await statusOf()).redrive!;
    expect(String(status.id)).toMatch(/^kubectl-/);
    // Started by the worker it was handed to (the operator only records), which moved it.
    expect(await client.hget(keys.redrive, 'id')).toBe(status.id);
    expect(op.operator.discovery.reports()).toHaveProperty('shop/refund-worker-1');
    await eventually(() => expect(new Set(tasksAtApp())).toEqual(new Set(Array.from({ length: 20 }, (_, n) => `task-${n}`))), { timeoutMs: 30_000 });
    expect(await client.xlen(keys.deadLetter!)).toBe(5);
    await eventually(async () => expect((await statusOf()).deadLetters).toBe(5), { timeoutMs: 30_000 });
    // The same annotation value is not acted on again (resyncs run every 200 ms).
    await sleep(1_500);
    expect(tasksAtApp()).toHaveLength(20);
    expect((await statusOf()).redrive).toMatchObject({ id: status.id, moved: 20 });
  });

  it('a value that is not a redrive request is refused in status; nothing moves', { timeout: 60_000 }, async () => {
    await cluster.kubectl('-n', 'shop', 'annotate', '--overwrite', 'taskqueue', 'refunds', 'sluice.dev/redrive={"perSecond": 0}');
    await eventually(async () => {
      const r = (await statusOf()).redrive!;
      expect(r.state).toBe('Invalid');
      expect(String(r.message)).toMatch(/sluice.dev\/redrive: perSecond must be an integer from 1/);
    }, { timeoutMs: 30_000, intervalMs: 200 });
    expect(await client.xlen(keys.deadLetter!)).toBe(5);
  });

  it('with no worker sidecar connected the redrive waits in status; the operator does not move dead letters itself', { timeout: 60_000 }, async () => {
    const idle = queueKeys({ namespace: 'shop', stream: 'shop.idle', deadLetterStream: 'shop.idle.dlq' });
    await cluster.client.create(TASK_QUEUES, {
      apiVersion: 'sluice.dev/v1alpha1', kind: 'TaskQueue',
      metadata: { name: 'idle', namespace: 'shop' },
      spec: {
        selector: { matchLabels: { app: 'nobody' } }, stream: 'shop.idle', consumerGroup: 'idle-workers',
        delivery: { protocol: 'http', path: '/tasks' }, deadLetter: { stream: 'shop.idle.dlq' },
      },
    });
    await client.xadd(idle.deadLetter!, '*', 'p', '{}', 'originalId', 'lonely', 'error', 'http 500', 'cause', 'exhausted');
    await cluster.kubectl('-n', 'shop', 'annotate', 'taskqueue', 'idle', 'sluice.dev/redrive={}');
    await eventually(async () => {
      const r = ((await cluster.client.get<any>(`${TASK_QUEUES}/idle`)).status ?? {}).redrive;
      expect(r).toMatchObject({ state: 'Pending' });
      expect(String(r.message)).toMatch(/Waiting for a worker sidecar/);
    }, { timeoutMs: 30_000, intervalMs: 200 });
    await sleep(1_000);
    expect(await client.exists(idle.redrive)).toBe(0);
    expect(await client.xlen(idle.deadLetter!)).toBe(1);
  });
});
