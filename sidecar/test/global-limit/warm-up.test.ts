import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { systemClock } from '../../../lib/clock.ts';
import { silentLogger } from '../../../lib/log.ts';
import { connectRedis, waitReady } from '../../../lib/redis/connection.ts';
import { rateLimitWarmBucketKey } from '../../../lib/redis/key-layout.ts';
import { RedisServer } from '../../../test/helpers/redis-server.ts';
import { createGlobalLimiter } from '../../src/limit/global/index.ts';
import { globalRule } from './rules.ts';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** A sidecar's Global limiter on its own connection; `close` is its process going away. */
async function sidecar(url: string, rule: ReturnType<typeof globalRule>, id: string) {
  const redis = connectRedis({ url, name: id, commandTimeoutMs: 2_000 });
  await waitReady(redis);
  const limiter = createGlobalLimiter(rule, { redis, clock: systemClock, logger: silentLogger, registry: new Registry(), sidecarId: id, mode: 'strict' });
  const close = () => {
    limiter.close();
    redis.disconnect();
  };
  cleanup.push(close);
  return { limiter, close };
}

/** Full demand on one partition for `ms`: 8 callers back to back. Returns how many were admitted. */
async function demand(limiter: { consume(k: string, now: number): unknown }, key: string, ms: number): Promise<number> {
  const until = performance.now() + ms;
  let admitted = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (performance.now() < until) {
      const d = (await limiter.consume(key, systemClock.now())) as { allowed: boolean };
      if (d.allowed) admitted++;
    }
  }));
  return admitted;
}

describe('warm-up on a Global rule (real redis-server)', () => {
  it('keeps the warmth in Redis: a restarted sidecar finds the limit warm, a new partition starts cold', async () => {
    const server = await RedisServer.start();
    cleanup.push(() => server.stop());
    // 100/s when warm, 10/s when cold; from cold to warm in 3 s of use.
    const rule = globalRule('warm', { requests: 100, per: '1s', warmUp: { period: '3s', coldFactor: 10 } }, 'Closed');
    const first = await sidecar(server.url, rule, 'a');

    const cold = await demand(first.limiter, 'fresh', 1_000);
    expect(cold).toBeLessThan(60); // about 10 (burst) + 10…40/s ramping
    expect(cold).toBeGreaterThan(0);

    await demand(first.limiter, 'busy', 3_500); // warms 'busy' fully
    first.close();
    const second = await sidecar(server.url, rule, 'b'); // a restart: nothing kept in the process
    const warm = await demand(second.limiter, 'busy', 1_000);
    expect(warm).toBeGreaterThan(75); // ≈ 100/s
    expect(warm).toBeGreaterThan(cold * 1.5);

    const state = await connectRedisOnce(server.url, rateLimitWarmBucketKey(rule.id, 'busy'));
    expect(Number(state.c)).toBeLessThan(0.2);
  }, 60_000);

  it('SlidingWindow: cold admits requests / coldFactor per window, and warms under use', async () => {
    const server = await RedisServer.start();
    cleanup.push(() => server.stop());
    const rule = globalRule('warm-sw', { requests: 100, per: '1s', algorithm: 'SlidingWindow', warmUp: { period: '3s', coldFactor: 10 } }, 'Closed');
    const { limiter } = await sidecar(server.url, rule, 'a');
    const cold = await demand(limiter, 'k', 1_000);
    expect(cold).toBeLessThan(60);
    expect(cold).toBeGreaterThan(0);
    await demand(limiter, 'k', 3_000);
    const warm = await demand(limiter, 'k', 1_000);
    expect(warm).toBeGreaterThan(75);
  }, 60_000);
});

async function connectRedisOnce(url: string, key: string): Promise<Record<string, string>> {
  const r = connectRedis({ url, name: 'inspect' });
  await waitReady(r);
  try {
    return await r.hgetall(key);
  } finally {
    r.disconnect();
  }
}
