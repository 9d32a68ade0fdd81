/**
 * The TaskQueue reconciler against a real redis-server and the real kube-apiserver (test/cluster): the stream and
 * group are ensured, status tells the queue's numbers, the worker Deployment scales with the lag
 * through its /scale subresource (down only after the stabilisation window), Redis going away is
 * a reported state, and deletionPolicy decides what deleting the TaskQueue does to the stream.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/eventually.ts';
import { RedisServer } from '../../../test/helpers/redis-server.ts';
import { queueKeys } from '../../../lib/redis/key-layout.ts';
import { isNotFound } from '../../src/errors.ts';
import { TASK_QUEUE_FINALIZER } from '../../src/task-queue/task-queue-reconciler.ts';
import { condition, startOperator, TestCluster, type StartedOperator } from '../helpers/cluster.ts';

let cluster: TestCluster;
let redis: RedisServer;
let op: StartedOperator;
let client: Redis;

const DEPLOYMENTS = '/apis/apps/v1/namespaces/shop/deployments';
const TASK_QUEUES = '/apis/sluice.dev/v1alpha1/namespaces/shop/taskqueues';

function taskQueue(name: string, stream: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'sluice.dev/v1alpha1', kind: 'TaskQueue',
    metadata: { name, namespace: 'shop' },
    spec: {
      selector: { matchLabels: { app: name } },
      stream, consumerGroup: `${name}-workers`,
      delivery: { protocol: 'http', path: '/tasks', timeout: '5s' },
      visibilityTimeout: '30s',
      deadLetter: { stream: `${stream}.dlq` },
      ...extra,
    },
  };
}

/** Where the queue of `stream` in namespace `namespace` lives in Redis (taskQueue() names its dead letters `<stream>.dlq`). */
function keysOf(stream: string, namespace = 'shop') {
  return queueKeys({ namespace, stream, deadLetterStream: `${stream}.dlq` });
}
const ORDERS = keysOf('shop.orders').stream;

async function scaleOf(name: string): Promise<number> {
  return (await cluster.client.get<any>(`${DEPLOYMENTS}/${name}/scale`)).spec.replicas;
}

async function taskQueueErrors(): Promise<number> {
  const m = await op.operator.metrics.reconciles.get();
  return m.values.find((v) => v.labels.kind === 'TaskQueue' && v.labels.result === 'error')?.value ?? 0;
}

async function gone(path: string): Promise<boolean> {
  try {
    await cluster.client.get(path);
    return false;
  } catch (err) {
    if (isNotFound(err)) return true;
    throw err;
  }
}

beforeAll(async () => {
  [cluster, redis] = await Promise.all([TestCluster.start(), RedisServer.start()]);
  client = new Redis(redis.url, { maxRetriesPerRequest: 1, lazyConnect: false });
  client.on('error', () => {});
  op = await startOperator(cluster, { redis: redis.url, queueResyncMs: 200 });
  await cluster.client.create(DEPLOYMENTS, {
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { name: 'order-worker', namespace: 'shop' },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'order-worker' } },
      template: { metadata: { labels: { app: 'order-worker' } }, spec: { containers: [{ name: 'app', image: 'worker:test' }] } },
    },
  });
});

afterAll(async () => {
  client?.disconnect();
  await op?.operator.stop();
  await Promise.all([cluster?.stop(), redis?.stop()]);
});

describe('TaskQueue reconciler', () => {
  it('ensures the stream and consumer group (finalizer first) and reports Ready with the numbers', async () => {
    await cluster.client.create(TASK_QUEUES, taskQueue('orders', 'shop.orders', {
      autoscale: { scaleTargetRef: { kind: 'Deployment', name: 'order-worker' }, minReplicas: 1, maxReplicas: 4, targetLagPerReplica: 10, stabilizationWindow: '3s' },
    }));
    await eventually(async () => {
      const s = await cluster.getStatus('taskqueues', 'shop', 'orders');
      expect(condition(s, 'Ready')).toMatchObject({ status: 'True', reason: 'StreamReady' });
      expect(s).toMatchObject({ length: 0, lag: 0, pending: 0, deadLetters: 0, consumers: 0, replicas: 1 });
    });
    const groups = (await client.call('XINFO', 'GROUPS', ORDERS)) as unknown[][];
    expect(groups.map((g) => g[1])).toEqual(['orders-workers']);
    const obj = await cluster.client.get(`${TASK_QUEUES}/orders`);
    expect(obj.metadata.finalizers).toContain(TASK_QUEUE_FINALIZER);
  });

  it('scales the worker Deployment up at once from the lag: ceil(25 / 10) = 3', async () => {
    // One transaction: the operator sees 0 or 25 waiting tasks, nothing in between.
    const tx = client.multi();
    for (let i = 0; i < 25; i++) tx.xadd(ORDERS, '*', 'task', String(i));
    await tx.exec();
    await eventually(async () => {
      const s = await cluster.getStatus('taskqueues', 'shop', 'orders');
      expect(s).toMatchObject({ length: 25, lag: 25, pending: 0, replicas: 3 });
      expect(condition(s, 'Autoscaling')).toMatchObject({ status: 'True', reason: 'ScalingActive' });
    });
    expect(await scaleOf('order-worker')).toBe(3);
    const table = await cluster.kubectl('get', 'taskqueues', '-n', 'shop', '-o', 'wide');
    expect(table).toMatch(/orders\s+shop\.orders\s+True\s+25\s+25\s+0\s+0\s+3/);
    await eventually(async () => {
      const events = JSON.parse(await cluster.kubectl('get', 'events', '-n', 'shop', '--field-selector', 'involvedObject.name=orders', '-o', 'json'));
      expect((events.items as { reason: string; message: string }[]).some((e) => e.reason === 'ScaledUp' && e.message.includes('from 1 to 3 replicas'))).toBe(true);
    });
  });

  it('drained: holds the replicas within the stabilisation window, then scales down to minReplicas', async () => {
    // A worker takes everything (pending), then acknowledges it all.
    const read = (await client.xreadgroup('GROUP', 'orders-workers', 'w1', 'COUNT', 100, 'STREAMS', ORDERS, '>')) as [string, [string, string[]][]][];
    const ids = read[0]![1].map(([id]) => id);
    expect(ids).toHaveLength(25);
    const pendingStatus = await eventually(async () => {
      const s = await cluster.getStatus('taskqueues', 'shop', 'orders');
      expect(s).toMatchObject({ lag: 0, pending: 25, consumers: 1 });
      return s;
    });
    expect(pendingStatus.replicas).toBe(3); // pending tasks are backlog too
    await client.xack(ORDERS, 'orders-workers', ...ids);
    // The first status that sees the queue drained still asks for 3: the window holds it.
    const drained = await eventually(async () => {
      const s = await cluster.getStatus('taskqueues', 'shop', 'orders');
      expect(s).toMatchObject({ lag: 0, pending: 0 });
      return s;
    });
    expect(drained.replicas).toBe(3);
    expect(condition(drained, 'Autoscaling')?.message).toContain('within the stabilization window');
    await eventually(async () => {
      expect(await scaleOf('order-worker')).toBe(1);
      expect((await cluster.getStatus('taskqueues', 'shop', 'orders')).replicas).toBe(1);
    }, { timeoutMs: 15_000 });
  });

  it('Redis down: Ready=False RedisUnavailable, the operator keeps running; back: Ready=True', async () => {
    await redis.kill();
    await eventually(async () => {
      const s = await cluster.getStatus('taskqueues', 'shop', 'orders');
      expect(condition(s, 'Ready')).toMatchObject({ status: 'False', reason: 'RedisUnavailable' });
      expect(condition(s, 'Autoscaling')).toMatchObject({ status: 'Unknown' });
    }, { timeoutMs: 15_000 });
    expect((await fetch(`${op.admin}/healthz`)).status).toBe(200);
    expect(op.operator.isLeader).toBe(true);
    await redis.restart();
    await eventually(async () => {
      const s = await cluster.getStatus('taskqueues', 'shop', 'orders');
      expect(condition(s, 'Ready')).toMatchObject({ status: 'True', reason: 'StreamReady' });
    }, { timeoutMs: 15_000 });
    // The new (empty) server got its stream and group back.
    expect(((await client.call('XINFO', 'GROUPS', ORDERS)) as unknown[][]).map((g) => g[1])).toEqual(['orders-workers']);
  });

  it('deletionPolicy Delete removes the queue’s own keys and nothing else: not a same-named queue of another namespace, not a raw key; Retain keeps them', async () => {
    await cluster.client.create(TASK_QUEUES, taskQueue('doomed', 'shop.doomed', { deletionPolicy: 'Delete' }));
    await cluster.client.create(TASK_QUEUES, taskQueue('kept', 'shop.kept', { deletionPolicy: 'Retain' }));
    await eventually(async () => {
      for (const n of ['doomed', 'kept']) expect(condition(await cluster.getStatus('taskqueues', 'shop', n), 'Ready')?.status).toBe('True');
    });
    const doomed = keysOf('shop.doomed');
    const elsewhere = keysOf('shop.doomed', 'other-team');
    await client.xadd(doomed.stream, '*', 'p', 'x');
    await client.xadd(doomed.deadLetter!, '*', 'p', 'dead');
    await client.hset(doomed.idempotency, 'abc', '1-0');
    await client.zadd(doomed.idempotencyExpiry, Date.now() + 60_000, 'abc');
    await client.zadd(doomed.delayed, 1, 'd1');
    // Another namespace's queue with the same stream name, and a key the user named like the stream.
    await client.xadd(elsewhere.stream, '*', 'p', 'theirs');
    await client.xadd(elsewhere.deadLetter!, '*', 'p', 'theirs');
    await client.set('shop.doomed', 'not sluice data');
    await client.xadd(keysOf('shop.kept').stream, '*', 'p', 'y');

    await cluster.client.delete(`${TASK_QUEUES}/doomed`);
    await cluster.client.delete(`${TASK_QUEUES}/kept`);
    await eventually(async () => {
      expect(await gone(`${TASK_QUEUES}/doomed`)).toBe(true);
      expect(await gone(`${TASK_QUEUES}/kept`)).toBe(true);
    });
    expect(await client.exists(...doomed.all)).toBe(0);
    expect(await client.xlen(elsewhere.stream)).toBe(1);
    expect(await client.xlen(elsewhere.deadLetter!)).toBe(1);
    expect(await client.get('shop.doomed')).toBe('not sluice data');
    expect(await client.xlen(keysOf('shop.kept').stream)).toBe(1);
    expect(((await client.call('XINFO', 'GROUPS', keysOf('shop.kept').stream)) as unknown[][]).map((g) => g[1])).toEqual(['kept-workers']);
  });

  it('deletionPolicy Delete while Redis is down: the finalizer holds the object until cleanup succeeds', async () => {
    await cluster.client.create(TASK_QUEUES, taskQueue('later', 'shop.later', { deletionPolicy: 'Delete' }));
    await eventually(async () => expect(condition(await cluster.getStatus('taskqueues', 'shop', 'later'), 'Ready')?.status).toBe('True'));
    await redis.kill();
    const before = await taskQueueErrors();
    await cluster.client.delete(`${TASK_QUEUES}/later`);
    // Still there, being deleted, finalizer in place after several failed cleanup attempts.
    await eventually(async () => expect(await taskQueueErrors()).toBeGreaterThan(before + 2));
    const held = await cluster.client.get(`${TASK_QUEUES}/later`);
    expect(held.metadata.deletionTimestamp).toBeDefined();
    expect(held.metadata.finalizers).toContain(TASK_QUEUE_FINALIZER);
    await redis.restart();
    await eventually(async () => expect(await gone(`${TASK_QUEUES}/later`)).toBe(true), { timeoutMs: 20_000 });
  });
});
