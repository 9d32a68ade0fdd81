import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { useCleanup, useRedisServer } from '../../../test/helpers/fixtures.ts';
import type { RedisServer } from '../../../test/helpers/redis-server.ts';
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

describe('retention.maxLen', () => {
  it('trims acknowledged history but never a task delivered and not yet acknowledged', async () => {
    const app = await WorkerApp.start();
    let release!: () => void;
    const held = new Promise<number>((res) => (release = () => res(200)));
    app.behaviour = (d) => (d.body === '"hold"' ? held : 200);
    const h = await QueueHarness.start({ redisUrl: redis.url, docs: [taskQueueDoc('retained', { retention: { maxLen: 10 }, visibilityTimeout: '30s' })], appHttp: app.address });
    cleanup.push(() => app.close(), () => h.close());
    await h.postBatch('retained', Array.from({ length: 20 }, (_, i) => ({ payload: i })));
    await eventually(() => expect(app.deliveries).toHaveLength(20));
    const hold = (await h.post('retained', '"hold"')).json.id!;
    await h.postBatch('retained', Array.from({ length: 20 }, (_, i) => ({ payload: i })));
    await eventually(() => expect(app.deliveries).toHaveLength(41));
    await eventually(async () => expect(await h.counter('sluice_queue_trimmed_total', { queue: 'retained' })).toBeGreaterThan(0), { timeoutMs: 5_000 });
    const ids = ((await r.xrange(testQueueKeys('retained').stream, '-', '+')) as [string, string[]][]).map(([id]) => id);
    expect(ids).toContain(hold);
    expect(await h.counter('sluice_queue_trim_held_entries', { queue: 'retained' })).toBeGreaterThan(0);
    release();
    await eventually(async () => expect(await r.xlen(testQueueKeys('retained').stream)).toBeLessThanOrEqual(10), { timeoutMs: 5_000 });
  });

  it('never trims tasks no consumer has read yet', async () => {
    const app = await WorkerApp.start(() => sleep(40).then(() => 200));
    const h = await QueueHarness.start({ redisUrl: redis.url, docs: [taskQueueDoc('backlog', { retention: { maxLen: 5 }, concurrency: 1 })], appHttp: app.address });
    cleanup.push(() => app.close(), () => h.close());
    const { json } = await h.postBatch('backlog', Array.from({ length: 40 }, (_, i) => ({ payload: i })));
    await eventually(() => expect(new Set(app.ids())).toEqual(new Set(json.tasks.map((t) => t.id))), { timeoutMs: 15_000 });
    await eventually(async () => expect(await r.xlen(testQueueKeys('backlog').stream)).toBeLessThanOrEqual(5), { timeoutMs: 5_000 });
    expect(await h.counter('sluice_queue_tasks_total', { queue: 'backlog', result: 'lost' })).toBe(0);
  });
});

describe('deadLetter.maxLen and deadLetter.maxAge', () => {
  const failFast = { retry: { maxAttempts: 1, backoff: { initial: '50ms', max: '50ms', multiplier: 1 } } };

  it('keeps only the newest maxLen dead letters', async () => {
    const app = await WorkerApp.start(() => 500);
    const doc = taskQueueDoc('dlq-len', { ...failFast, deadLetter: { stream: 'test.dlq-len.dlq', maxLen: 5 } });
    const h = await QueueHarness.start({ redisUrl: redis.url, docs: [doc], appHttp: app.address });
    cleanup.push(() => app.close(), () => h.close());
    const { json } = await h.postBatch('dlq-len', Array.from({ length: 12 }, (_, i) => ({ payload: i })));
    await eventually(() => expect(app.deliveries).toHaveLength(12), { timeoutMs: 15_000 });
    await eventually(async () => expect(await h.counter('sluice_queue_tasks_total', { queue: 'dlq-len', result: 'dead_lettered' })).toBe(12), { timeoutMs: 15_000 });
    await eventually(async () => expect(await r.xlen(testQueueKeys('dlq-len').deadLetter!)).toBe(5), { timeoutMs: 5_000 });
    const left = ((await r.xrange(testQueueKeys('dlq-len').deadLetter!, '-', '+')) as [string, string[]][]).map(([, f]) => f[f.indexOf('originalId') + 1]);
    expect(new Set(left).size).toBe(5);
    for (const id of left) expect(json.tasks.map((t) => t.id)).toContain(id);
    expect(await h.counter('sluice_queue_tasks_total', { queue: 'dlq-len', result: 'dead_letter_expired' })).toBe(7);
    expect((await h.feature.stats(h.feature.resolve('dlq-len'))).deadLetters).toBe(5);
  });

  it('removes dead letters older than maxAge', async () => {
    const app = await WorkerApp.start(() => 500);
    const doc = taskQueueDoc('dlq-age', { ...failFast, deadLetter: { stream: 'test.dlq-age.dlq', maxAge: '1500ms' } });
    const h = await QueueHarness.start({ redisUrl: redis.url, docs: [doc], appHttp: app.address });
    cleanup.push(() => app.close(), () => h.close());
    await h.postBatch('dlq-age', Array.from({ length: 4 }, (_, i) => ({ payload: i })));
    await eventually(async () => expect(await r.xlen(testQueueKeys('dlq-age').deadLetter!)).toBe(4), { timeoutMs: 15_000 });
    await eventually(async () => expect(await r.xlen(testQueueKeys('dlq-age').deadLetter!)).toBe(0), { timeoutMs: 10_000 });
    expect(await h.counter('sluice_queue_tasks_total', { queue: 'dlq-age', result: 'dead_letter_expired' })).toBe(4);
  });
});
