import { afterEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { systemClock } from '../../../lib/clock.ts';
import { RedisServer } from '../../../test/helpers/redis-server.ts';
import { eventually } from '../../../test/helpers/eventually.ts';
import { silentLogger } from '../../../lib/log.ts';
import { connectRedis, waitReady } from '../../../lib/redis/connection.ts';
import { createGlobalLimiter, type GlobalLimiter } from '../../src/limit/global/index.ts';
import type { Decision } from '../../src/limit/limiter.ts';
import { globalRule } from './rules.ts';

const COMMAND_TIMEOUT_MS = 200;
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function setup(failureMode: 'Open' | 'Closed', sidecars: number) {
  const server = await RedisServer.start();
  cleanup.push(() => server.stop());
  const rule = globalRule(`fm-${failureMode.toLowerCase()}`, { requests: 100, per: '10s', burst: 100 }, failureMode);
  const registry = new Registry();
  const limiters: GlobalLimiter[] = [];
  for (let i = 0; i < sidecars; i++) {
    const redis: Redis = connectRedis({ url: server.url, name: `s${i}`, commandTimeoutMs: COMMAND_TIMEOUT_MS });
    await waitReady(redis);
    const limiter = createGlobalLimiter(rule, { redis, clock: systemClock, logger: silentLogger, registry, sidecarId: `s${i}`, heartbeatMs: 100 });
    cleanup.push(() => { limiter.close(); redis.disconnect(); });
    limiters.push(limiter);
  }
  return { server, registry, limiters, rule };
}

async function fallbacks(registry: Registry): Promise<number> {
  const values = (await registry.getSingleMetric('sluice_ratelimit_global_fallbacks_total')?.get())?.values ?? [];
  return values.reduce((s, v) => s + v.value, 0);
}

async function burst(limiter: GlobalLimiter, n: number, key = 'k'): Promise<Decision[]> {
  const out: Decision[] = [];
  for (let i = 0; i < n; i++) out.push(await limiter.consume(key, systemClock.now()));
  return out;
}
const allowed = (ds: Decision[]) => ds.filter((d) => d.allowed).length;

describe('Global limit when Redis goes away', () => {
  it('failureMode Open: each sidecar falls back to its share of the limit, counted, then recovers', async () => {
    const { server, registry, limiters } = await setup('Open', 2);
    const [a, b] = limiters as [GlobalLimiter, GlobalLimiter];
    await eventually(() => expect([a.peers, b.peers]).toEqual([2, 2]));
    expect(allowed(await burst(a, 10))).toBe(10);

    await server.kill();
    // 100 per 10 s shared by 2 live sidecars: 50 each (+ what refills during the burst: 10/s).
    const started = systemClock.now();
    const during = await burst(a, 200, 'other');
    const refilled = Math.ceil((10 * (systemClock.now() - started)) / 1000);
    expect(allowed(during)).toBeGreaterThanOrEqual(50);
    expect(allowed(during)).toBeLessThanOrEqual(50 + refilled);
    expect(during.at(-1)?.retryAfterMs).toBeGreaterThan(0);
    expect(await fallbacks(registry)).toBeGreaterThanOrEqual(200);
    expect(a.redisDown).toBe(true);

    await server.restart();
    // Back on Redis: a fresh partition gets the whole shared burst again, not the local share.
    await eventually(async () => {
      expect(allowed(await burst(a, 1, `probe-${Math.random()}`))).toBe(1);
      expect(a.redisDown).toBe(false);
    });
    const before = await fallbacks(registry);
    expect(allowed(await burst(a, 80, 'after'))).toBe(80);
    expect(await fallbacks(registry)).toBe(before);
  });

  it('failureMode Closed: rejects while Redis is down, with a Retry-After, and recovers', async () => {
    const { server, registry, limiters } = await setup('Closed', 1);
    const [a] = limiters as [GlobalLimiter];
    expect(allowed(await burst(a, 5))).toBe(5);
    await server.kill();
    const during = await burst(a, 50, 'other');
    expect(allowed(during)).toBe(0);
    expect(during.every((d) => d.retryAfterMs >= 1)).toBe(true);
    expect(await fallbacks(registry)).toBe(50);
    await server.restart();
    await eventually(async () => expect(allowed(await burst(a, 1, 'again'))).toBe(1));
  });

  it('answers within the Redis command timeout when the server hangs (SIGSTOP)', async () => {
    const { server, limiters } = await setup('Closed', 1);
    const [a] = limiters as [GlobalLimiter];
    expect(allowed(await burst(a, 1))).toBe(1);
    server.pause();
    cleanup.push(() => server.resume());
    const started = systemClock.now();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => a.consume(`hang-${i}`, systemClock.now())));
    const took = systemClock.now() - started;
    expect(results.every((d) => !d.allowed)).toBe(true);
    // About one command timeout, not twenty (4 s): the first failure opens the gate. The bound
    // leaves room for a loaded machine and still tells the two apart.
    expect(took).toBeLessThan(5 * COMMAND_TIMEOUT_MS);
    const next = systemClock.now();
    expect((await a.consume('hang-next', next)).allowed).toBe(false);
    // Answered from the open gate, without waiting on the hung server for another timeout.
    expect(systemClock.now() - next).toBeLessThan(COMMAND_TIMEOUT_MS);
  });
});
