import { Counter, Gauge, type Registry } from 'prom-client';

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
}

export function globalLimitMetrics(registry: Registry): GlobalLimitMetrics {
  return {
    fallbacks: once(registry, 'sluice_ratelimit_global_fallbacks_total', () => new Counter({
      name: 'sluice_ratelimit_global_fallbacks_total',
      help: 'Global rate limit decisions made without Redis (failureMode Open: local share; Closed: rejected).',
      labelNames: ['rule', 'failure_mode'] as const,
      registers: [registry],
    })),
    redisCalls: once(registry, 'sluice_ratelimit_global_redis_calls_total', () => new Counter({
      name: 'sluice_ratelimit_global_redis_calls_total',
      help: 'Global rate limit script calls to Redis, by result.',
      labelNames: ['rule', 'result'] as const,
      registers: [registry],
    })),
    peers: once(registry, 'sluice_ratelimit_global_peers', () => new Gauge({
      name: 'sluice_ratelimit_global_peers',
      help: 'Sidecars sharing a Global rule, from their heartbeats in Redis.',
      labelNames: ['rule'] as const,
      registers: [registry],
    })),
  };
}

function once<M>(registry: Registry, name: string, create: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? create();
}
