import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { useCleanup, useRedisServer } from '../../../test/helpers/fixtures.ts';
import type { RedisServer } from '../../../test/helpers/redis-server.ts';
import { compilePlan } from '../../../lib/policy/index.ts';
import { queueKeys } from '../../../lib/redis/key-layout.ts';
import { QueueHarness, taskQueueDoc } from './helpers/queue-harness.ts';
import { WorkerApp } from './helpers/worker-app.ts';

let redis: RedisServer;
useRedisServer((server) => {
  redis = server;
});
const cleanup = useCleanup();

/** The same TaskQueue — same name, same `stream`, same group, same dead-letter stream — in `namespace`. */
function docIn(namespace: string): Record<string, unknown> {
  const doc = taskQueueDoc('orders', { stream: 'orders', consumerGroup: 'workers', deadLetter: { stream: 'orders.dlq' } });
  return { ...doc, metadata: { name: 'orders', namespace } };
}

describe('two namespaces with TaskQueues of the same stream name', () => {
  it('never see each other’s tasks, dead letters or stats', async () => {
    const [appA, appB] = await Promise.all([WorkerApp.start((d) => (d.body.includes('poison') ? 422 : 200)), WorkerApp.start()]);
    cleanup.push(() => appA.close(), () => appB.close());
    const [a, b] = await Promise.all([
      QueueHarness.start({ redisUrl: redis.url, docs: [docIn('team-a')], appHttp: appA.address, consumerName: 'pod-a' }),
      QueueHarness.start({ redisUrl: redis.url, docs: [docIn('team-b')], appHttp: appB.address, consumerName: 'pod-b' }),
    ]);
    cleanup.push(() => a.close(), () => b.close());
    const planA = compilePlan([docIn('team-a')]).taskQueues[0]!;
    const planB = compilePlan([docIn('team-b')]).taskQueues[0]!;

    for (let i = 0; i < 5; i++) expect((await a.post('orders', { team: 'a', i })).status).toBe(202);
    expect((await a.post('orders', { team: 'a', poison: true })).status).toBe(202);
    for (let i = 0; i < 3; i++) expect((await b.post('orders', { team: 'b', i })).status).toBe(202);
    // An idempotency key used in one namespace means nothing in the other.
    const keyedA = await a.post('orders', { team: 'a', keyed: true }, { 'idempotency-key': 'same' });
    const keyedB = await b.post('orders', { team: 'b', keyed: true }, { 'idempotency-key': 'same' });
    expect(keyedA.json.duplicate).toBe(false);
    expect(keyedB.json.duplicate).toBe(false);

    await eventually(() => {
      expect(appA.deliveries).toHaveLength(7);
      expect(appB.deliveries).toHaveLength(4);
    }, { timeoutMs: 15_000 });
    await sleep(300);
    expect(appA.deliveries.every((d) => d.body.includes('"team":"a"'))).toBe(true);
    expect(appB.deliveries.every((d) => d.body.includes('"team":"b"'))).toBe(true);
    expect(appB.deliveries).toHaveLength(4);

    await eventually(async () => expect((await a.feature.stats(planA)).deadLetters).toBe(1));
    const [statsA, statsB] = await Promise.all([a.feature.stats(planA), b.feature.stats(planB)]);
    expect(statsA).toMatchObject({ length: 7, pending: 0, deadLetters: 1 });
    expect(statsB).toMatchObject({ length: 4, pending: 0, deadLetters: 0 });
    // Each side reads the other's queue by name, as a producer in that namespace would: still its own numbers.
    expect((await a.feature.stats(planB)).length).toBe(4);

    // Nothing was written under the raw user names.
    const r = new Redis(redis.url);
    cleanup.push(async () => r.disconnect());
    expect(await r.exists('orders', 'orders.dlq')).toBe(0);
    expect(queueKeys(planA).stream).not.toBe(queueKeys(planB).stream);
  });
});
