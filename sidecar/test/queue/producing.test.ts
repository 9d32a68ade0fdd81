import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { useCleanup, useRedisServer } from '../../../test/helpers/fixtures.ts';
import { RedisServer } from '../../../test/helpers/redis-server.ts';
import type { TaskQueuePlan } from '../../../lib/policy/index.ts';
import { TaskProducer } from '../../src/queue/producer.ts';
import { queueKeys } from '../../../lib/redis/key-layout.ts';
import { QueueHarness, taskQueueDoc } from './helpers/queue-harness.ts';
import { WorkerApp } from './helpers/worker-app.ts';

let redis: RedisServer;
useRedisServer((server) => {
  redis = server;
});
const cleanup = useCleanup();

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

  it('concurrent posts (joined into one script call) each get their own ids, and a key repeated across them is one task', async () => {
    const { app, h } = await setup('joined');
    const posts = await Promise.all(Array.from({ length: 6 }, (_, r) =>
      h.postBatch('joined', Array.from({ length: 5 }, (_, i) => ({ payload: { r, i }, ...(i === 0 ? { idempotencyKey: 'shared' } : {}) })))));
    for (const p of posts) expect(p.status).toBe(202);
    const firsts = posts.map((p) => p.json.tasks[0]!);
    // Exactly one request created the keyed task; every other one got its id back as a duplicate.
    expect(firsts.filter((t) => !t.duplicate)).toHaveLength(1);
    expect(new Set(firsts.map((t) => t.id)).size).toBe(1);
    const fresh = posts.flatMap((p) => p.json.tasks.filter((t) => !t.duplicate));
    expect(new Set(fresh.map((t) => t.id)).size).toBe(6 * 4 + 1);
    await eventually(() => expect(app.deliveries).toHaveLength(6 * 4 + 1));
    // Each id was answered to the request that posted that payload.
    const bodyById = new Map(app.deliveries.map((d) => [d.id, JSON.parse(d.body) as { r: number; i: number }]));
    posts.forEach((p, r) => p.json.tasks.forEach((t, i) => {
      if (i > 0) expect(bodyById.get(t.id)).toEqual({ r, i });
    }));
  });

  it('enqueues issued in the same turn go to Redis as one ENQUEUE call, each answered with its own ids', async () => {
    const client = new Redis(redis.url);
    cleanup.push(async () => client.disconnect());
    const producer = new TaskProducer(client);
    const queue = { id: 'test/direct', namespace: 'test', stream: 'joined.direct' } as TaskQueuePlan;
    const task = (text: string, idempotencyKey?: string) => ({ payload: Buffer.from(JSON.stringify(text)), contentType: 'application/json', idempotencyKey, delayMs: 0 });
    await producer.enqueue(queue, [task('warm-up')]); // loads the script
    await client.config('RESETSTAT');
    // Plain tasks travel as their payload alone, the others with key, delay and content type:
    // one call mixes both shapes, and text payloads given as strings.
    const [a, b, c, d] = await Promise.all([
      producer.enqueue(queue, [task('a1'), task('a2', 'k')]),
      producer.enqueue(queue, [task('b1', 'k')]),
      producer.enqueue(queue, [task('c1'), task('c2'), task('c3')]),
      producer.enqueue(queue, [{ payload: 'plain text', contentType: 'text/plain', idempotencyKey: undefined, delayMs: 0 }, { ...task('later'), delayMs: 60_000 }, { ...task('d3'), payload: '"d3"' }]),
    ]);
    const stats = await client.info('commandstats');
    expect(stats).toMatch(/cmdstat_evalsha:calls=1,/);
    expect(a!.map((e) => e.duplicate)).toEqual([false, false]);
    expect(b).toEqual([{ id: a![1]!.id, duplicate: true }]);
    expect(c!.map((e) => e.duplicate)).toEqual([false, false, false]);
    const entries = (await client.xrange(queueKeys(queue).stream, '-', '+')) as [string, string[]][];
    const payloadOf = new Map(entries.map(([id, fields]) => [id, fields[1]]));
    expect([...a!, ...c!].map((e) => payloadOf.get(e.id))).toEqual(['"a1"', '"a2"', '"c1"', '"c2"', '"c3"']);
    const fieldsOf = new Map(entries.map(([id, fields]) => [id, fields]));
    expect(fieldsOf.get(d![0]!.id)).toEqual(['p', 'plain text', 'c', 'text/plain']);
    expect(fieldsOf.get(d![2]!.id)).toEqual(['p', '"d3"']);
    expect(fieldsOf.has(d![1]!.id)).toBe(false); // delayed: in the delay set, not yet in the stream
    expect(await client.zscore(queueKeys(queue).delayed, d![1]!.id)).not.toBeNull();
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
    expect(await r.zcard(queueKeys({ namespace: 'shop', stream: 'test.delayed' }).delayed)).toBe(2);
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
