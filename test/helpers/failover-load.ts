import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { systemClock } from '../../lib/clock.ts';
import { silentLogger } from '../../lib/log.ts';
import { connectRedis, waitReady } from '../../lib/redis/connection.ts';
import { createGlobalLimiter } from '../../sidecar/src/limit/global/index.ts';
import { globalRule } from '../../sidecar/test/global-limit/rules.ts';
import { QueueHarness, taskQueueDoc } from '../../sidecar/test/queue/helpers/queue-harness.ts';
import { WorkerApp } from '../../sidecar/test/queue/helpers/worker-app.ts';
import { eventually, sleep } from './eventually.ts';

export interface FailoverResult {
  /** Replicated queue: tasks whose enqueue was confirmed, and those of them never delivered. */
  readonly replicatedConfirmed: number;
  readonly replicatedLost: number;
  /** Async queue: the same, plus how long before the kill each lost task had been confirmed. */
  readonly asyncConfirmed: number;
  readonly asyncLost: number;
  readonly asyncLostConfirmedBeforeKillMs: readonly number[];
  /** Enqueues refused while the primary was gone (the producer saw them fail). */
  readonly refusedEnqueues: number;
  /** Global-limit decisions answered by failureMode (Open) while Redis was unreachable. */
  readonly fallbacks: number;
  readonly sawRedisDown: boolean;
  /** After the failover: decisions go to Redis again (no new fallbacks) and consumers deliver new tasks. */
  readonly recovered: boolean;
}

/**
 * Puts a sidecar's Redis work under load through `url` — a Global limit (strict, failureMode Open)
 * deciding, producers posting batches to a `durability: Replicated` queue and an Async one,
 * consumers delivering to a real worker app — calls `kill` (which returns once the failover is
 * done) half-way, goes on until `replicatedTarget` replicated tasks are confirmed, then checks
 * which confirmed tasks never reached the worker.
 */
const started = Date.now();
/** Progress on stderr with SLUICE_TEST_LOG=1: where a slow or stuck run spends its time. */
function phase(what: string): void {
  if (process.env.SLUICE_TEST_LOG === '1') console.error(`[failover-load +${Date.now() - started} ms] ${what}`);
}

export async function runFailoverLoad(opts: {
  url: string;
  replicatedQueue: string;
  asyncQueue: string;
  rule: string;
  replicatedTarget: number;
  kill: () => Promise<void>;
}): Promise<FailoverResult> {
  const stops: (() => unknown)[] = [];
  try {
    const app = await WorkerApp.start(() => 200);
    stops.push(() => app.close());
    const docs = [
      taskQueueDoc(opts.replicatedQueue, { concurrency: 64, durability: 'Replicated', replicationTimeout: '2s' }),
      taskQueueDoc(opts.asyncQueue, { concurrency: 64 }),
    ];
    const h = await QueueHarness.start({ redisUrl: opts.url, docs, appHttp: app.address, deps: { blockMs: 200 } });
    stops.push(() => h.close());

    const registry = new Registry();
    const redis: Redis = connectRedis({ url: opts.url, name: 'failover-limits', commandTimeoutMs: 200 });
    stops.push(() => redis.disconnect());
    await waitReady(redis, 10_000);
    const limiter = createGlobalLimiter(globalRule(opts.rule, { requests: 1_000_000, per: '1h', burst: 1_000_000 }, 'Open'), {
      redis, clock: systemClock, logger: silentLogger, registry, sidecarId: 'failover', heartbeatMs: 200, mode: 'strict',
    });
    stops.push(() => limiter.close());
    const fallbacks = async () => ((await registry.getSingleMetric('sluice_ratelimit_global_fallbacks_total')?.get())?.values ?? []).reduce((s, v) => s + v.value, 0);

    const confirmed = { replicated: new Map<string, number>(), async: new Map<string, number>() };
    let refused = 0;
    let running = true;
    let sawRedisDown = false;
    const produce = async (queue: string, into: Map<string, number>) => {
      for (let n = 0; running; n++) {
        try {
          const r = await h.postBatch(queue, Array.from({ length: 50 }, (_, i) => ({ payload: { n, i } })));
          if (r.status === 202) for (const t of r.json.tasks) into.set(t.id, Date.now());
          else {
            refused++;
            await sleep(20);
          }
        } catch {
          refused++;
          await sleep(20);
        }
      }
    };
    const decide = async () => {
      while (running) {
        await limiter.consume(`k${Math.floor(Math.random() * 100)}`, systemClock.now());
        if (limiter.redisDown) sawRedisDown = true;
        await sleep(1);
      }
    };
    phase('load starts');
    const loops = [
      produce(opts.replicatedQueue, confirmed.replicated), produce(opts.replicatedQueue, confirmed.replicated),
      produce(opts.asyncQueue, confirmed.async), decide(),
    ];
    let killedAt = 0;
    let recovered = false;
    try {
      await eventually(() => {
        if (confirmed.replicated.size < opts.replicatedTarget / 2) throw new Error(`${confirmed.replicated.size} confirmed`);
      }, { timeoutMs: 40_000, intervalMs: 50 });
      killedAt = Date.now();
      phase(`killing, confirmed ${confirmed.replicated.size}/${confirmed.async.size}`);
      await opts.kill();
      phase(`failed over, confirmed ${confirmed.replicated.size}/${confirmed.async.size} refused ${refused}`);
      await eventually(() => {
        if (confirmed.replicated.size < opts.replicatedTarget) throw new Error(`${confirmed.replicated.size} confirmed`);
      }, { timeoutMs: 40_000, intervalMs: 50 });
      // Recovery: the limiter is back on Redis (fallbacks stop growing) and new tasks are delivered.
      await eventually(async () => {
        if (limiter.redisDown) throw new Error('limiter still down');
        const before = await fallbacks();
        await sleep(300);
        if ((await fallbacks()) !== before) throw new Error('still falling back');
      }, { timeoutMs: 20_000, intervalMs: 100 });
      recovered = true;
      phase(`recovered, confirmed ${confirmed.replicated.size}/${confirmed.async.size} refused ${refused}`);
    } finally {
      running = false;
      await Promise.all(loops);
    }

    // Everything confirmed and still in Redis is delivered eventually; what is never delivered was lost.
    const delivered = new Set<string>();
    const undelivered = (m: Map<string, number>) => [...m.keys()].filter((id) => !delivered.has(id));
    let settled = 0;
    await eventually(() => {
      for (const d of app.deliveries) delivered.add(d.id);
      const now = undelivered(confirmed.replicated).length + undelivered(confirmed.async).length;
      // Settled: the consumers have nothing left (the count has stopped falling for a while).
      if (now !== settled) {
        settled = now;
        throw new Error(`${now} undelivered, still falling`);
      }
    }, { timeoutMs: 30_000, intervalMs: 1_500 });
    phase('settled');
    const asyncLost = undelivered(confirmed.async);
    return {
      replicatedConfirmed: confirmed.replicated.size,
      replicatedLost: undelivered(confirmed.replicated).length,
      asyncConfirmed: confirmed.async.size,
      asyncLost: asyncLost.length,
      asyncLostConfirmedBeforeKillMs: asyncLost.map((id) => killedAt - (confirmed.async.get(id) as number)),
      refusedEnqueues: refused,
      fallbacks: await fallbacks(),
      sawRedisDown,
      recovered,
    };
  } finally {
    for (const s of stops.reverse()) await Promise.resolve().then(s).catch(() => {});
  }
}
