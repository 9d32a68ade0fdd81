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
