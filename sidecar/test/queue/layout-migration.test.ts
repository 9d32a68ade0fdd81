import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { useCleanup, useRedisServer } from '../../../test/helpers/fixtures.ts';
import type { RedisServer } from '../../../test/helpers/redis-server.ts';
import { compilePlan } from '../../../lib/policy/index.ts';
import { LAYOUT_VERSION_KEY, legacyQueueKeys, queueKeys } from '../../../lib/redis/key-layout.ts';
import { QueueHarness, taskQueueDoc, testQueueKeys } from './helpers/queue-harness.ts';
import { WorkerApp } from './helpers/worker-app.ts';

let redis: RedisServer;
useRedisServer((server) => {
  redis = server;
});
const cleanup = useCleanup();

/** What a version-1 sidecar left in Redis: raw stream and dead-letter names, side keys under `sluice:tq:{stream}`. */
async function writeOldLayout(r: Redis, legacy: ReturnType<typeof legacyQueueKeys>) {
  await r.call('XGROUP', 'CREATE', legacy.stream, 'legacy-workers', '0', 'MKSTREAM');
  const ids: string[] = [];
  for (let n = 0; n < 10; n++) ids.push((await r.xadd(legacy.stream, '*', 'p', JSON.stringify({ n }))) as string);
  // A worker of the old version read four and died holding them.
  await r.call('XREADGROUP', 'GROUP', 'legacy-workers', 'old-pod', 'COUNT', 4, 'STREAMS', legacy.stream, '>');
  // Three delayed tasks, packed as the old ENQUEUE packed them, due in about 1.5 s.
  const [sec, usec] = (await r.time()) as [number, number];
  const due = Number(sec) * 1000 + Math.floor(Number(usec) / 1000) + 1_500;
  for (let k = 1; k <= 3; k++) {
    await r.eval(
      "redis.call('HSET', KEYS[1], ARGV[1], cmsgpack.pack({'p', ARGV[2], 'i', ARGV[1]})); redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])",
      2, legacy.delayedTasks, legacy.delayed, `d${due}-${k}`, JSON.stringify({ n: 49 + k }), due,
    );
  }
  await r.set(legacy.seq, '3');
  // Dead letters: two of this queue, one of another queue that shared the stream.
  for (const q of ['shop/legacy', 'shop/legacy', 'shop/other']) await r.xadd(legacy.deadLetter!, '*', 'p', '{}', 'queue', q, 'attempts', '3');
  await r.set(`${legacy.idempotencyPrefix}order-1`, ids[0]!, 'PX', 600_000);
  return ids;
}

describe('migration from the version-1 key layout', () => {
  it('moves pending, delayed, dead-lettered tasks and idempotency records while producers and a worker run; each task is delivered once', async () => {
    const r = new Redis(redis.url);
    cleanup.push(async () => r.disconnect());
    const doc = taskQueueDoc('legacy', { visibilityTimeout: '1s' });
    const plan = compilePlan([doc]).taskQueues[0]!;
    const legacy = legacyQueueKeys(plan);
    const keys = testQueueKeys('legacy');
    const ids = await writeOldLayout(r, legacy);

    // An old-version producer keeps appending under the old name while the new sidecars start.
    let oldProducing = true;
    let oldCount = 0;
    const oldProducer = (async () => {
      while (oldProducing) {
        await r.xadd(legacy.stream, '*', 'p', JSON.stringify({ n: 100 + oldCount++ }));
        await sleep(15);
      }
    })();

    const app = await WorkerApp.start();
    cleanup.push(() => app.close());
    // One worker and two producers of the new version start at once: three migrations race.
    const [worker, ...producers] = await Promise.all([
      QueueHarness.start({ redisUrl: redis.url, docs: [doc], appHttp: app.address, consumerName: 'new-pod', deps: { legacySweepMs: 200 } }),
      QueueHarness.start({ redisUrl: redis.url, docs: [doc], labels: { app: 'api' } }),
      QueueHarness.start({ redisUrl: redis.url, docs: [doc], labels: { app: 'api' } }),
    ]);
    cleanup.push(() => worker.close(), ...producers.map((p) => () => p.close()));

    const posted: Promise<unknown>[] = [];
    for (let k = 0; k < 30; k++) {
      const p = producers[k % 2]!;
      posted.push(p.post('legacy', { n: 200 + k }).then((res) => expect(res.status).toBe(202)));
      if (k === 10) {
        await sleep(300);
        oldProducing = false;
      }
    }
    await oldProducer;
    await Promise.all(posted);

    // The idempotency record moved with its window: the same key answers with the old task's id.
    const again = await producers[0]!.post('legacy', { n: 0 }, { 'idempotency-key': 'order-1' });
    expect(again.json).toEqual({ id: ids[0], duplicate: true });

    const expected = [...Array.from({ length: 10 }, (_, n) => n), 50, 51, 52, ...Array.from({ length: oldCount }, (_, k) => 100 + k), ...Array.from({ length: 30 }, (_, k) => 200 + k)];
    const delivered = () => app.deliveries.map((d) => (JSON.parse(d.body) as { n: number }).n);
    await eventually(() => expect(new Set(delivered())).toEqual(new Set(expected)), { timeoutMs: 30_000 });
    await sleep(1_500); // a duplicate would arrive by now (visibility timeout 1 s, sweep 200 ms)
    expect(delivered().sort((a, b) => a - b)).toEqual(expected.sort((a, b) => a - b));

    // The four the dead old worker held kept their delivery count: this is their second attempt.
    const byN = new Map(app.deliveries.map((d) => [(JSON.parse(d.body) as { n: number }).n, d]));
    for (const n of [0, 1, 2, 3]) expect(byN.get(n)!.attempt).toBe(2);
    for (const n of [4, 50, 200]) expect(byN.get(n)!.attempt).toBe(1);

    // Dead letters: this queue's two moved into its own key space; the other queue's one stayed.
    expect(await r.xlen(keys.deadLetter!)).toBe(2);
    expect(await r.xlen(legacy.deadLetter!)).toBe(1);
    expect((await worker.feature.stats(plan)).deadLetters).toBe(2);

    // Nothing of this queue is left under the old names; the delay counter carried on.
    await eventually(async () => expect(await r.exists(legacy.stream, legacy.delayed, legacy.delayedTasks, legacy.seq, `${legacy.idempotencyPrefix}order-1`)).toBe(0));
    expect(Number(await r.get(keys.seq))).toBeGreaterThanOrEqual(3);
    expect(await r.get(keys.layout)).toBe('2');
    expect(await r.get(LAYOUT_VERSION_KEY)).toBe('2');
  });

  it('a layout newer than this version is refused, not written over', async () => {
    const r = new Redis(redis.url);
    cleanup.push(async () => r.disconnect());
    await r.set(LAYOUT_VERSION_KEY, '3');
    cleanup.push(() => r.set(LAYOUT_VERSION_KEY, '2'));
    const h = await QueueHarness.start({ redisUrl: redis.url, docs: [taskQueueDoc('future')], labels: { app: 'api' } });
    cleanup.push(() => h.close());
    const res = await h.post('future', { n: 1 });
    expect(res.status).toBe(503);
    expect(res.json.code).toBe('SLUICE_ERR_QUEUE_UNAVAILABLE');
    expect(await r.exists(queueKeys({ namespace: 'shop', stream: 'test.future' }).stream)).toBe(0);
  });
});
