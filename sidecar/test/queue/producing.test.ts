import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { RedisServer } from '../../../test/helpers/redis-server.ts';
import { QueueHarness, taskQueueDoc } from './helpers/queue-harness.ts';
import { WorkerApp } from './helpers/worker-app.ts';

let redis: RedisServer;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!().catch(() => {});
});

async function setup(name: string, spec: Record<string, unknown> = {}, deps = {}) {
  const app = await WorkerApp.start();
  const h = await QueueHarness.start({ redisUrl: redis.url, docs: [taskQueueDoc(name, spec)], appHttp: app.address, deps });
  cleanup.push(() => app.close(), () => h.close());
  return { app, h };
}

describe('producing on the local API', () => {
  it('the same Idempotency-Key yields the same id and no second task', async () => {
    const { app, h } = await setup('idem');
    const first = await h.post('idem', { order: 7 }, { 'idempotency-key': 'order-7' });
    const again = await h.post('idem', { order: 7 }, { 'idempotency-key': 'order-7' });
    const other = await h.post('idem', { order: 8 }, { 'idempotency-key': 'order-8' });
    expect(first).toEqual({ status: 202, json: { id: first.json.id, duplicate: false } });
    expect(again).toEqual({ status: 202, json: { id: first.json.id, duplicate: true } });
    expect(other.json.id).not.toBe(first.json.id);
    const batch = await h.postBatch('idem', [{ payload: 7, idempotencyKey: 'order-7' }, { payload: 9, idempotencyKey: 'order-9' }, { payload: 9, idempotencyKey: 'order-9' }]);
    expect(batch.json.tasks.map((t) => t.duplicate)).toEqual([true, false, true]);
    expect(batch.json.tasks[0]!.id).toBe(first.json.id);
    await eventually(() => expect(app.ids().sort()).toEqual([first.json.id, other.json.id, batch.json.tasks[1]!.id].sort()));
    await sleep(200);
    expect(app.deliveries).toHaveLength(3);
    expect(await h.counter('sluice_queue_tasks_total', { queue: 'idem', result: 'duplicate' })).toBe(3);
  });

  it('the idempotency window ends: after it the key makes a new task', async () => {
    const { h } = await setup('window', {}, { idempotencyWindowMs: 300 });
    const first = await h.post('window', 1, { 'idempotency-key': 'k' });
    await sleep(400);
    const later = await h.post('window', 1, { 'idempotency-key': 'k' });
    expect(later.json).toMatchObject({ duplicate: false });
    expect(later.json.id).not.toBe(first.json.id);
  });

  it('a delayed task is not delivered early, and its delay lives in Redis', async () => {
    const { app, h } = await setup('delayed');
    const posted = Date.now();
    const { status, json } = await h.post('delayed', { later: true }, { 'sluice-delay': '1200ms' });
    expect(status).toBe(202);
    const notBefore = await h.post('delayed', { at: true }, { 'sluice-not-before': new Date(posted + 800).toISOString() });
    const r = new Redis(redis.url);
    cleanup.push(async () => r.disconnect());
    expect(await r.zcard('sluice:tq:{test.delayed}:delayed')).toBe(2);
    await eventually(() => expect(app.deliveries).toHaveLength(2), { timeoutMs: 10_000 });
    const byId = new Map(app.deliveries.map((d) => [d.id, d]));
    expect(byId.get(json.id!)!.at - posted).toBeGreaterThanOrEqual(1_200);
    expect(byId.get(notBefore.json.id!)!.at - posted).toBeGreaterThanOrEqual(800);
    expect(byId.get(json.id!)!.attempt).toBe(1);
  });

  it('a delayed task survives the sidecar: another sidecar delivers it when due', async () => {
    const doc = taskQueueDoc('survive');
    const app = await WorkerApp.start();
    cleanup.push(() => app.close());
    const first = await QueueHarness.start({ redisUrl: redis.url, docs: [doc], appHttp: app.address, consumerName: 'one' });
    const posted = Date.now();
    const { json } = await first.post('survive', { x: 1 }, { 'sluice-delay': '1s' });
    await first.close();
    const second = await QueueHarness.start({ redisUrl: redis.url, docs: [doc], appHttp: app.address, consumerName: 'two' });
    cleanup.push(() => second.close());
    await eventually(() => expect(app.ids()).toEqual([json.id]), { timeoutMs: 10_000 });
    expect(app.deliveries[0]!.at - posted).toBeGreaterThanOrEqual(1_000);
  });

  it('answers errors with stable codes', async () => {
    const { h } = await setup('errors', {}, { maxTaskBytes: 1_000 });
    const unknown = await h.post('nope', {});
    expect([unknown.status, unknown.json.code]).toEqual([404, 'SLUICE_ERR_QUEUE_NOT_FOUND']);
    const badDelay = await h.post('errors', {}, { 'sluice-delay': 'whenever' });
    expect([badDelay.status, badDelay.json.code]).toEqual([400, 'SLUICE_ERR_QUEUE_BAD_TASK']);
    const badJson = await h.post('errors', '{not json', { 'content-type': 'application/json' });
    expect([badJson.status, badJson.json.code]).toEqual([400, 'SLUICE_ERR_QUEUE_BAD_TASK']);
    const big = await h.post('errors', 'x'.repeat(2_000), { 'content-type': 'text/plain' });
    expect([big.status, big.json.code]).toEqual([413, 'SLUICE_ERR_QUEUE_TOO_LARGE']);
    const get = await fetch(`${h.api}/v1/queues/errors/tasks`);
    expect(get.status).toBe(405);
  });

  it('answers 503 SLUICE_ERR_QUEUE_UNAVAILABLE while Redis is down, and recovers', async () => {
    const own = await RedisServer.start();
    cleanup.push(() => own.stop());
    const app = await WorkerApp.start();
    const h = await QueueHarness.start({ redisUrl: own.url, docs: [taskQueueDoc('outage')], appHttp: app.address });
    cleanup.push(() => app.close(), () => h.close());
    await own.kill();
    const down = await h.post('outage', {});
    expect([down.status, down.json.code]).toEqual([503, 'SLUICE_ERR_QUEUE_UNAVAILABLE']);
    await own.restart();
    await eventually(async () => expect((await h.post('outage', { back: true })).status).toBe(202), { timeoutMs: 10_000 });
    await eventually(() => expect(app.deliveries.map((d) => d.body)).toContain('{"back":true}'), { timeoutMs: 10_000 });
  });
});
