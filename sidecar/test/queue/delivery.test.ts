import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/eventually.ts';
import { useCleanup, useRedisServer } from '../../../test/helpers/fixtures.ts';
import type { RedisServer } from '../../../test/helpers/redis-server.ts';
import { backoffFloorMs } from '../../src/queue/backoff.ts';
import { QueueHarness, taskQueueDoc, testQueueKeys } from './helpers/queue-harness.ts';
import { WorkerApp } from './helpers/worker-app.ts';

let redis: RedisServer;
let r: Redis;
useRedisServer((server) => {
  redis = server;
  r = new Redis(server.url);
  return () => r.disconnect();
});
const cleanup = useCleanup();

async function setup(name: string, spec: Record<string, unknown> = {}) {
  const app = await WorkerApp.start();
  const h = await QueueHarness.start({ redisUrl: redis.url, docs: [taskQueueDoc(name, spec)], appHttp: app.address });
  cleanup.push(() => app.close(), () => h.close());
  return { app, h };
}

async function deadLetters(queue: string): Promise<Record<string, string>[]> {
  const entries = (await r.xrange(testQueueKeys(queue).deadLetter!, '-', '+')) as [string, string[]][];
  return entries.map(([, f]) => Object.fromEntries(f.flatMap((_, i) => (i % 2 ? [] : [[f[i], f[i + 1]]]))));
}

describe('TaskQueue delivery', () => {
  it('delivers a task to the app with its id, attempt and queue, then acks it', async () => {
    const { app, h } = await setup('happy');
    const { status, json } = await h.post('happy', { order: 42 });
    expect(status).toBe(202);
    await eventually(() => expect(app.deliveries).toHaveLength(1));
    expect(app.deliveries[0]).toMatchObject({ id: json.id, attempt: 1, queue: 'happy', body: '{"order":42}', contentType: 'application/json' });
    await eventually(async () => expect(await h.counter('sluice_queue_tasks_total', { queue: 'happy', result: 'acked' })).toBe(1));
    const stats = await (await fetch(`${h.api}/v1/queues/happy`)).json();
    expect(stats).toMatchObject({ pending: 0, lag: 0, length: 1, delayed: 0, deadLetters: 0 });
  });

  it('keeps a raw body byte for byte with its content type', async () => {
    const { app, h } = await setup('raw');
    await h.post('raw', 'id,qty\n7,3\n', { 'content-type': 'text/csv' });
    await eventually(() => expect(app.deliveries).toHaveLength(1));
    expect(app.deliveries[0]).toMatchObject({ contentType: 'text/csv', body: 'id,qty\n7,3\n' });
  });

  it('never holds more than `concurrency` tasks in flight', async () => {
    const { app, h } = await setup('bounded', { concurrency: 3 });
    let current = 0;
    let peak = 0;
    app.behaviour = async () => {
      peak = Math.max(peak, ++current);
      await new Promise((res) => setTimeout(res, 30));
      current--;
      return 200;
    };
    await h.postBatch('bounded', Array.from({ length: 30 }, (_, i) => ({ payload: i })));
    await eventually(() => expect(app.deliveries).toHaveLength(30));
    expect(peak).toBe(3);
  });

  it('delivers several tasks per call with delivery.batchSize and honours per-task results', async () => {
    const { app, h } = await setup('batched', { concurrency: 20, delivery: { protocol: 'http', path: '/tasks', timeout: '5s', batchSize: 10 }, retry: { maxAttempts: 1 } });
    app.behaviour = (d) => (d.body === '13' ? 500 : 200);
    const { json } = await h.postBatch('batched', Array.from({ length: 20 }, (_, i) => ({ payload: i })));
    await eventually(() => expect(app.deliveries).toHaveLength(20));
    expect(Math.max(...app.deliveries.map((d) => d.batchSize))).toBeGreaterThan(1);
    await eventually(async () => expect(await h.counter('sluice_queue_tasks_total', { queue: 'batched', result: 'acked' })).toBe(19));
    const dead = await deadLetters('batched');
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ originalId: json.tasks[13]!.id, error: 'http 500', attempts: '1' });
  });

  it('a batch answer too large to be a results document is not read as one: the status decides', async () => {
    // The app fails one task by its results, but pads the answer past the 4 MiB the sidecar keeps.
    let failId = '';
    let calls = 0;
    const app = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        calls++;
        const tasks = (JSON.parse(body) as { tasks: { id: string }[] }).tasks;
        failId ||= tasks[0]!.id;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ results: [{ id: failId, status: 500 }], pad: 'x'.repeat(5 * 1024 * 1024) }));
      });
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => app.close(resolve)));
    const h = await QueueHarness.start({
      redisUrl: redis.url,
      docs: [taskQueueDoc('padded', { delivery: { protocol: 'http', path: '/tasks', timeout: '5s', batchSize: 5 }, retry: { maxAttempts: 1 } })],
      appHttp: `127.0.0.1:${(app.address() as AddressInfo).port}`,
    });
    cleanup.push(() => h.close());
    await h.postBatch('padded', Array.from({ length: 5 }, (_, i) => ({ payload: i })));
    await eventually(async () => expect(await h.counter('sluice_queue_tasks_total', { queue: 'padded', result: 'acked' })).toBe(5));
    expect(calls).toBeGreaterThanOrEqual(1);
    expect(await deadLetters('padded')).toHaveLength(0);
  });

  it('retries a failing task with backoff: attempt n+1 never before backoff(n)', async () => {
    const retry = { maxAttempts: 4, backoff: { initial: '200ms', max: '2s', multiplier: 2 } };
    const { app, h } = await setup('retrying', { retry });
    app.behaviour = (d) => (d.attempt < 4 ? 503 : 200);
    const { json } = await h.post('retrying', { n: 1 });
    await eventually(() => expect(app.deliveries.map((d) => d.attempt)).toEqual([1, 2, 3, 4]), { timeoutMs: 15_000 });
    expect(new Set(app.ids())).toEqual(new Set([json.id]));
    const plan = { initialMs: 200, maxMs: 2_000, multiplier: 2 };
    for (let n = 1; n < 4; n++) {
      const gap = app.deliveries[n]!.at - app.deliveries[n - 1]!.at;
      expect(gap).toBeGreaterThanOrEqual(backoffFloorMs(n, plan));
    }
    await eventually(async () => expect(await h.counter('sluice_queue_tasks_total', { queue: 'retrying', result: 'acked' })).toBe(1));
    expect(await h.counter('sluice_queue_tasks_total', { queue: 'retrying', result: 'retried' })).toBe(3);
  });

  it('dead-letters after maxAttempts with the error, the attempts and the original id, then acks', async () => {
    const { app, h } = await setup('exhausted', { retry: { maxAttempts: 3, backoff: { initial: '50ms', max: '100ms', multiplier: 2 } } });
    app.behaviour = () => 500;
    const { json } = await h.post('exhausted', { doomed: true });
    await eventually(async () => expect(await deadLetters('exhausted')).toHaveLength(1), { timeoutMs: 10_000 });
    expect(app.deliveries.map((d) => d.attempt)).toEqual([1, 2, 3]);
    const [dead] = await deadLetters('exhausted');
    expect(dead).toMatchObject({ originalId: json.id, attempts: '3', error: 'http 500', cause: 'exhausted', queue: 'shop/exhausted', p: '{"doomed":true}' });
    await eventually(async () => expect(((await (await fetch(`${h.api}/v1/queues/exhausted`)).json()) as { pending: number }).pending).toBe(0));
  });

  it('dead-letters at once when the app answers a permanent failure (422)', async () => {
    const { app, h } = await setup('permanent');
    app.behaviour = () => 422;
    const { json } = await h.post('permanent', { invalid: true });
    await eventually(async () => expect(await deadLetters('permanent')).toHaveLength(1));
    expect(app.deliveries).toHaveLength(1);
    expect((await deadLetters('permanent'))[0]).toMatchObject({ originalId: json.id, attempts: '1', cause: 'permanent', error: 'http 422' });
  });

  it('a delivery slower than delivery.timeout fails and is retried', async () => {
    const { app, h } = await setup('slow', { delivery: { protocol: 'http', path: '/tasks', timeout: '200ms' } });
    app.behaviour = async (d) => {
      if (d.attempt === 1) await new Promise((res) => setTimeout(res, 1_000));
      return 200;
    };
    await h.post('slow', {});
    await eventually(() => expect(app.deliveries.map((d) => d.attempt)).toEqual([1, 2]));
    await eventually(async () => expect(await h.counter('sluice_queue_tasks_total', { queue: 'slow', result: 'acked' })).toBe(1));
  });
});
