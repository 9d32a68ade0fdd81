import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { systemClock } from '../../../lib/clock.ts';
import type { RateLimitRule } from '../../../lib/policy/plan.ts';
import { RedisServer } from '../../../test/helpers/redis-server.ts';
import { silentLogger } from '../../../lib/log.ts';
import { connectRedis, waitReady } from '../../../lib/redis/connection.ts';
import { createGlobalLimiter, type GlobalLimiter, type GlobalMode } from '../../src/limit/global/index.ts';
import { lowWater } from '../../src/limit/global/lease.ts';
import { drive } from './drive.ts';
import { globalRule } from './rules.ts';

let server: RedisServer;
const clients: Redis[] = [];

beforeAll(async () => {
  server = await RedisServer.start();
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await server.stop();
});

/** One "sidecar": its own connection and registry, as two pods would have. */
async function sidecar(rule: RateLimitRule, id: string, mode: GlobalMode): Promise<{ limiter: GlobalLimiter; registry: Registry }> {
  const redis = connectRedis({ url: server.url, name: id });
  clients.push(redis);
  await waitReady(redis);
  const registry = new Registry();
  return { limiter: createGlobalLimiter(rule, { redis, clock: systemClock, logger: silentLogger, registry, sidecarId: id, mode }), registry };
}

async function redisCalls(registry: Registry): Promise<number> {
  const m = registry.getSingleMetric('sluice_ratelimit_global_redis_calls_total');
  return ((await m?.get())?.values ?? []).reduce((s, v) => s + v.value, 0);
}

// Strict mode pays a Redis round trip per decision, so on a loaded machine it cannot outrun a
// limit of thousands per second; its limit is smaller so that both modes are surely limited.
const REQUESTS = { lease: 4_000, strict: 400 } as const;

describe.each([
  ['TokenBucket', (requests: number) => ({ requests, per: '1s', burst: requests, algorithm: 'TokenBucket' }) as const],
  ['SlidingWindow', (requests: number) => ({ requests, per: '1s', algorithm: 'SlidingWindow' }) as const],
] as const)('two sidecars sharing one Global %s limit', (algorithm, limitOf) => {
  it.each(['lease', 'strict'] as const)('%s mode admits the limit, within the stated bound', async (mode) => {
    const requests = REQUESTS[mode];
    const rule = globalRule(`${algorithm}-${mode}`.toLowerCase(), limitOf(requests));
    const a = await sidecar(rule, 'a', mode);
    const b = await sidecar(rule, 'b', mode);
    const started = systemClock.now();
    const [ra, rb] = await Promise.all([drive(a.limiter, systemClock, 1_500), drive(b.limiter, systemClock, 1_500)]);
    const elapsedS = (systemClock.now() - started) / 1_000;
    a.limiter.close();
    b.limiter.close();

    const admitted = ra.allowed + rb.allowed;
    // Both ran the whole time and both were limited: the limit was shared, not doubled.
    expect(ra.allowed).toBeGreaterThan(0);
    expect(rb.allowed).toBeGreaterThan(0);
    expect(ra.denied + rb.denied).toBeGreaterThan(0);
    // What the shared limit allows over the run (capacity + refill; a sliding window admits at most
    // `requests` per window, i.e. at most 2 windows' worth in 1.5 s) + what leases may shift in.
    const allowedByLimit = algorithm === 'TokenBucket' ? requests + requests * elapsedS : requests * Math.ceil(elapsedS + 1);
    const maxBatch = requests * 0.005;
    const bound = mode === 'lease' ? 2 * (maxBatch + lowWater({ maxBatch, leaseMs: 0, horizonMs: 0 })) : 0;
    expect(admitted).toBeLessThanOrEqual(allowedByLimit + bound);
    expect(admitted).toBeGreaterThan(requests);

    const decisions = ra.allowed + ra.denied + rb.allowed + rb.denied;
    const calls = (await redisCalls(a.registry)) + (await redisCalls(b.registry));
    if (mode === 'lease') expect(calls / decisions).toBeLessThan(0.1);
    else expect(calls).toBeGreaterThanOrEqual(decisions);
  });
});
