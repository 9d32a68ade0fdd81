import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { RedisServer } from '../../../test/helpers/redis-server.ts';
import { connectRedis, waitReady } from '../../../lib/redis/connection.ts';
import { GCRA, SLIDING_WINDOW, gcraAnswer, slidingWindowAnswer } from '../../src/limit/global/scripts.ts';
import { rateLimitBucketKey as bucketKey } from '../../../lib/redis/key-layout.ts';
import { sleep } from '../../../test/helpers/eventually.ts';

let server: RedisServer;
let redis: Redis;
let n = 0;
const key = () => bucketKey('shop/api/rule', `p${++n}`);

/** period ms, requests, capacity, want, min → [granted, remaining, retryAfterMs, resetMs], decoded as the limiter does. */
const run = async (script: typeof GCRA, k: string, args: [number, number, number, number, number]): Promise<number[]> => {
  const reply = await script.run(redis, [k], args);
  const a = script === GCRA ? gcraAnswer(reply, args[0], args[1], args[2], args[4]) : slidingWindowAnswer(reply);
  return [a.granted, a.remaining, a.retryAfterMs, a.resetMs];
};

beforeAll(async () => {
  server = await RedisServer.start();
  redis = connectRedis({ url: server.url, name: 'test' });
  await waitReady(redis);
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

describe('GCRA script (TokenBucket)', () => {
  it('admits the burst, then refuses with the time until the next token', async () => {
    // A token every second, so that a loaded machine's pauses between calls refill nothing.
    const k = key();
    const started = performance.now();
    for (let i = 0; i < 5; i++) expect((await run(GCRA, k, [10_000, 10, 5, 1, 1]))[0]).toBe(1);
    const [granted, remaining, retryAfterMs, resetMs] = await run(GCRA, k, [10_000, 10, 5, 1, 1]);
    const elapsed = performance.now() - started;
    expect(granted).toBe(0);
    expect(remaining).toBe(0);
    expect(retryAfterMs).toBeGreaterThan(0);
    expect(retryAfterMs).toBeLessThanOrEqual(1_000);
    // Five tokens taken: full again 5 s after the first call, less the time that has passed.
    expect(resetMs).toBeGreaterThanOrEqual(5_000 - elapsed - 1);
    expect(resetMs).toBeLessThanOrEqual(5_000);
  });

  it('grants a batch in one call, partially when fewer are left, and nothing below min', async () => {
    // A token every second, so that a loaded machine's pauses between calls refill nothing.
    const k = key();
    const started = performance.now();
    expect((await run(GCRA, k, [600_000, 600, 100, 70, 35]))[0]).toBe(70);
    expect((await run(GCRA, k, [600_000, 600, 100, 70, 20]))[0]).toBe(30);
    const [granted, , retryAfterMs] = await run(GCRA, k, [600_000, 600, 100, 70, 10]);
    const elapsed = performance.now() - started;
    expect(granted).toBe(0);
    // 10 tokens at 1 s each, less what has refilled since the bucket was emptied.
    expect(retryAfterMs).toBeGreaterThanOrEqual(10_000 - elapsed - 1);
    expect(retryAfterMs).toBeLessThanOrEqual(10_000);
  });

  it('refills with time, by the Redis server clock', async () => {
    const k = key();
    expect((await run(GCRA, k, [100, 10, 10, 10, 10]))[0]).toBe(10);
    expect((await run(GCRA, k, [100, 10, 10, 1, 1]))[0]).toBe(0);
    await sleep(120);
    expect((await run(GCRA, k, [100, 10, 10, 10, 10]))[0]).toBe(10);
  });

  it('lets the key expire once the bucket would be full again', async () => {
    const k = key();
    const started = performance.now();
    await run(GCRA, k, [10_000, 10, 10, 3, 1]);
    const pttl = await redis.pttl(k);
    // Three tokens at 1 s each: the bucket is full again, and the key useless, 3 s after the call.
    expect(pttl).toBeGreaterThanOrEqual(3_000 - (performance.now() - started) - 1);
    expect(pttl).toBeLessThanOrEqual(3_002);
  });
});

describe('SlidingWindow script', () => {
  it('admits the limit per window and refuses with a retry time within the window', async () => {
    const k = key();
    expect((await run(SLIDING_WINDOW, k, [1_000, 20, 20, 15, 1]))[0]).toBe(15);
    expect((await run(SLIDING_WINDOW, k, [1_000, 20, 20, 15, 1]))[0]).toBe(5);
    const [granted, remaining, retryAfterMs, resetMs] = await run(SLIDING_WINDOW, k, [1_000, 20, 20, 1, 1]);
    expect(granted).toBe(0);
    expect(remaining).toBe(0);
    expect(retryAfterMs).toBeGreaterThan(0);
    expect(retryAfterMs).toBeLessThanOrEqual(2_000);
    expect(resetMs).toBeGreaterThan(1_000);
    expect(await redis.hget(k, 'c')).toBe('20');
  });

  it('weights the previous window by its overlap', async () => {
    // A previous window that admitted the whole limit, written as the script keeps it; then the
    // grant must be what the overlap leaves: floor(limit × elapsed / W), elapsed read on the server.
    const W = 10_000;
    const serverMs = async () => {
      const [sec, usec] = await redis.time();
      return Number(sec) * 1_000 + Number(usec) / 1_000;
    };
    for (;;) {
      const k = key();
      const before = await serverMs();
      const w = Math.floor(before / W);
      await redis.hset(k, 'w', w - 1, 'c', 10, 'p', 0);
      const [granted] = await run(SLIDING_WINDOW, k, [W, 10, 10, 10, 1]);
      const after = await serverMs();
      if (Math.floor(after / W) !== w) continue; // the window moved on meanwhile: set it up again
      expect(granted).toBeGreaterThanOrEqual(Math.floor((10 * (before - w * W)) / W));
      expect(granted).toBeLessThanOrEqual(Math.floor((10 * (after - w * W)) / W + 1e-6));
      break;
    }
  });
});
