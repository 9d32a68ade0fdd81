import { Counter, Gauge, type Registry } from '../../prom-client.ts';

/**
 * What one Global limiter counts on its hot path: plain numbers, added to the prom-client counters
 * only when they are collected (a scrape, or a test reading the registry). A labelled child's
 * `inc()` hashes its labels on every call, which a strict-mode decision would pay each time.
 */
export class GlobalLimitCounts {
  readonly rule: string;
  readonly failureMode: string;
  /** Decisions answered by the failure mode because Redis could not answer in time. */
  fallbacks = 0;
  redisOk = 0;
  redisError = 0;
  private flushed = { fallbacks: 0, redisOk: 0, redisError: 0 };

  constructor(rule: string, failureMode: string) {
    this.rule = rule;
    this.failureMode = failureMode;
  }

  /** Moves what was counted since the last flush into the registry's counters. */
  flush(m: GlobalLimitMetrics): void {
    const f = this.flushed;
    if (this.fallbacks > f.fallbacks) m.fallbacks.inc({ rule: this.rule, failure_mode: this.failureMode }, this.fallbacks - f.fallbacks);
    if (this.redisOk > f.redisOk) m.redisCalls.inc({ rule: this.rule, result: 'ok' }, this.redisOk - f.redisOk);
    if (this.redisError > f.redisError) m.redisCalls.inc({ rule: this.rule, result: 'error' }, this.redisError - f.redisError);
    this.flushed = { fallbacks: this.fallbacks, redisOk: this.redisOk, redisError: this.redisError };
  }
}

/**
 * The Global limiter's metrics. Several rules (and, in tests, several sidecars) share a registry,
 * so each metric is created once per registry and looked up after that.
 */
export interface GlobalLimitMetrics {
  /** Decisions answered by the failure mode because Redis could not answer in time. */
  readonly fallbacks: Counter<'rule' | 'failure_mode'>;
  /** Script calls to Redis, by result (ok, error): with the decisions, gives calls per decision. */
  readonly redisCalls: Counter<'rule' | 'result'>;
  /** Live sidecars sharing the rule, as last seen in Redis (the Open fallback divides by it). */
  readonly peers: Gauge<'rule'>;
  /** Starts collecting a limiter's counts; the returned function flushes them a last time and stops. */
  track(counts: GlobalLimitCounts): () => void;
}

const byRegistry = new WeakMap<Registry, GlobalLimitMetrics>();

export function globalLimitMetrics(registry: Registry): GlobalLimitMetrics {
  const known = byRegistry.get(registry);
  if (known !== undefined) return known;
  const sources = new Set<GlobalLimitCounts>();
  let metrics: GlobalLimitMetrics;
  const collect = () => {
    for (const c of sources) c.flush(metrics);
  };
  metrics = {
    fallbacks: new Counter({
      name: 'sluice_ratelimit_global_fallbacks_total',
      help: 'Global rate limit decisions made without Redis (failureMode Open: local share; Closed: rejected).',
      labelNames: ['rule', 'failure_mode'] as const,
      registers: [registry],
      collect,
    }),
    redisCalls: new Counter({
      name: 'sluice_ratelimit_global_redis_calls_total',
      help: 'Global rate limit script calls to Redis, by result.',
      labelNames: ['rule', 'result'] as const,
      registers: [registry],
      collect,
    }),
    peers: new Gauge({
      name: 'sluice_ratelimit_global_peers',
      help: 'Sidecars sharing a Global rule, from their heartbeats in Redis.',
      labelNames: ['rule'] as const,
      registers: [registry],
    }),
    track(counts) {
      sources.add(counts);
      return () => {
        counts.flush(metrics);
        sources.delete(counts);
      };
    },
  };
  byRegistry.set(registry, metrics);
  return metrics;
}
