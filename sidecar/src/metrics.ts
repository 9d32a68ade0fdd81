import { Counter, Gauge, Registry, collectDefaultMetrics } from './prom-client.ts';
import { HotCounter, HotHistogram } from './hot-metrics.ts';

/**
 * The sidecar's fixed metric set, declared up front so dashboards and tests can rely
 * on it. Each sidecar instance has its own registry (tests run several in one process). Hot paths
 * bind label children once (see PolicyEngine) rather than resolving labels per request.
 */
export class SidecarMetrics {
  readonly registry = new Registry();

  // The three metrics touched by every request are HotCounter/HotHistogram (see hot-metrics.ts).
  readonly requests = new HotCounter({
    name: 'sluice_requests_total',
    help: 'Requests seen by the sidecar, by what it decided (allowed, rate_limited, circuit_open, bulkhead_full, concurrency_limited, priority_shed, would_limit, would_break, rejected).',
    labelNames: ['direction', 'protocol', 'route', 'decision'] as const,
    registers: [this.registry],
  });

  readonly rateLimitDecisions = new HotCounter({
    name: 'sluice_ratelimit_decisions_total',
    help: 'Rate limiter decisions per rule: allowed, limited (enforced), would_limit (DryRun), fallback (Redis unavailable).',
    labelNames: ['rule', 'scope', 'decision'] as const,
    registers: [this.registry],
  });

  readonly fencingChecks = new HotCounter({
    name: 'sluice_fencing_checks_total',
    help: 'FencingPolicy checks per rule: accepted, stale (older than the newest accepted), missing, malformed, unavailable (refused: lock nodes undecided), failed_open (forwarded unchecked: lock nodes undecided), unchecked (no token, missingToken Allow).',
    labelNames: ['rule', 'result'] as const,
    registers: [this.registry],
  });

  readonly circuitState = new Gauge({
    name: 'sluice_circuit_state',
    help: 'Circuit state per breaker rule: 0 closed, 1 open, 2 half-open.',
    labelNames: ['rule'] as const,
    registers: [this.registry],
  });

  readonly circuitTransitions = new Counter({
    name: 'sluice_circuit_transitions_total',
    help: 'Circuit state changes per rule.',
    labelNames: ['rule', 'from', 'to', 'reason'] as const,
    registers: [this.registry],
  });

  readonly upstreamDuration = new HotHistogram({
    name: 'sluice_upstream_duration_seconds',
    help: 'Time from forwarding a request to the app until its response ended.',
    labelNames: ['protocol', 'outcome'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly configVersion = new Gauge({
    name: 'sluice_config_version',
    help: 'The active config version (value 1 on the series whose label is the version).',
    labelNames: ['version', 'source'] as const,
    registers: [this.registry],
  });

  readonly configReloads = new Counter({
    name: 'sluice_config_reloads_total',
    help: 'Config loads by result: applied, rejected (invalid: the last good config stays), unchanged.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly clientErrors = new Counter({
    name: 'sluice_client_errors_total',
    help: 'Malformed or abusive requests answered without forwarding, by status (400, 408, 413, 431).',
    labelNames: ['protocol', 'status'] as const,
    registers: [this.registry],
  });

  readonly wsConnections = new Gauge({
    name: 'sluice_websocket_connections',
    help: 'Open proxied WebSocket connections.',
    registers: [this.registry],
  });

  readonly wsCloses = new Counter({
    name: 'sluice_websocket_closes_total',
    help: 'WebSocket connections closed by the sidecar, by close code (1012 shutdown drain, 1008 policy, 1009 too big).',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  readonly wsPingTimeouts = new Counter({
    name: 'sluice_websocket_ping_timeouts_total',
    help: 'WebSocket connections closed because the client did not answer the sidecar\'s ping in time.',
    registers: [this.registry],
  });

  /**
   * The adaptive concurrency limits of the current plan, read when metrics are scraped (the
   * request path never touches these gauges). The policy engine replaces the map on each reload.
   */
  adaptiveSources: ReadonlyMap<string, AdaptiveSource> = new Map();

  readonly adaptiveLimit: Gauge<'rule'> = new Gauge({
    name: 'sluice_adaptive_concurrency_limit',
    help: 'The concurrency limit in force per CircuitBreakerPolicy rule with adaptiveConcurrency (the smaller of it and the bulkhead).',
    labelNames: ['rule'] as const,
    registers: [this.registry],
    collect: (): void => this.collectAdaptive((s) => s.limit, this.adaptiveLimit),
  });

  readonly adaptiveInFlight: Gauge<'rule'> = new Gauge({
    name: 'sluice_adaptive_concurrency_in_flight',
    help: 'Calls in flight to the app per rule with adaptiveConcurrency.',
    labelNames: ['rule'] as const,
    registers: [this.registry],
    collect: (): void => this.collectAdaptive((s) => s.inFlight, this.adaptiveInFlight),
  });

  readonly adaptiveMinRtt: Gauge<'rule'> = new Gauge({
    name: 'sluice_adaptive_concurrency_min_rtt_seconds',
    help: 'The measured no-load latency the adaptive limit is judged against (Gradient), or the fastest call seen (AIMD).',
    labelNames: ['rule'] as const,
    registers: [this.registry],
    collect: (): void => this.collectAdaptive((s) => (s.minRttMs === undefined ? undefined : s.minRttMs / 1000), this.adaptiveMinRtt),
  });

  readonly adaptiveRefusals = new HotCounter({
    name: 'sluice_adaptive_refusals_total',
    help: 'Calls refused (or, in DryRun, that would have been) by an adaptive concurrency limit or a priority level, per rule, reason (concurrency_limited, priority_shed) and level.',
    labelNames: ['rule', 'reason', 'level', 'mode'] as const,
    registers: [this.registry],
  });

  private collectAdaptive(read: (s: AdaptiveSource) => number | undefined, gauge: Gauge<'rule'>): void {
    gauge.reset();
    for (const [rule, s] of this.adaptiveSources) {
      const v = read(s);
      if (v !== undefined) gauge.labels(rule).set(v);
    }
  }

  constructor({ defaultMetrics = false }: { defaultMetrics?: boolean } = {}) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'sluice_process_' });
  }
}

/** What the adaptive metrics read from one rule's concurrency gate at scrape time. */
export interface AdaptiveSource {
  readonly limit: number;
  readonly inFlight: number;
  readonly minRttMs: number | undefined;
}
