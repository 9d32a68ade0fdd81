import type { BreakerRule, Plan, RateLimitRule } from '../../../lib/policy/plan.ts';
import type { FencingRule } from '../../../lib/policy/fencing.ts';
import { acceptedTokenKey } from '../../../lib/redis/key-layout.ts';
import { Bulkhead } from '../breaker/bulkhead.ts';
import { CircuitBreaker, type StateChange } from '../breaker/circuit-breaker.ts';
import type { Limiter } from '../limit/limiter.ts';
import { createLocalLimiter } from '../limit/local.ts';
import { TokenBucket } from '../limit/token-bucket.ts';
import type { CounterCell } from '../hot-metrics.ts';
import type { ConcurrencyLimit } from '../adaptive/concurrency-limit.ts';
import { createConcurrencyLimit } from '../adaptive/create-concurrency-limit.ts';
import { PriorityGate } from '../adaptive/priority-gate.ts';
import type { AdaptiveSource } from '../metrics.ts';
import { LocalConnectionQuota, type ConnectionQuota } from '../websocket/connection-quota.ts';
import type { SidecarMetrics } from '../metrics.ts';

export interface LimitStep {
  readonly rule: RateLimitRule;
  readonly limiter: Limiter;
  readonly enforce: boolean;
  readonly allowed: CounterCell;
  readonly limited: CounterCell;
  /** Priority levels sharing the limit; the quota they share is the bucket / window size. */
  readonly priority: PriorityGate | undefined;
}

export interface BreakerStep {
  readonly rule: BreakerRule;
  readonly breaker: CircuitBreaker;
  /** The static bulkhead and/or the adaptive limit, with their one queue. */
  readonly bulkhead: Bulkhead | undefined;
  readonly adaptive: ConcurrencyLimit | undefined;
  readonly priority: PriorityGate | undefined;
  readonly enforce: boolean;
}

export interface WebSocketStep {
  readonly rule: RateLimitRule;
  readonly enforce: boolean;
  readonly maxConnections: number | undefined;
  readonly connectionRate: TokenBucket | undefined;
  readonly messagesPerSecond: number | undefined;
  readonly maxMessageBytes: number | undefined;
  /** Open connections admitted under this rule (carried across plan swaps). */
  readonly open: { count: number };
  /** maxConnectionsPerKey: the quota (Local, or Global in Redis) and what it counts by. */
  readonly maxConnectionsPerKey: number | undefined;
  readonly quota: ConnectionQuota | undefined;
  /** The connection key in the shape partitionKey() reads, so it resolves keys as rate limits do. */
  readonly quotaKey: Pick<RateLimitRule, 'key'> | undefined;
}

/** Told of every circuit state change (logs and the operator's Events); must not throw. */
export type CircuitChangeListener = (rule: BreakerRule, change: StateChange) => void;
/** A Global rule's maxConnectionsPerKey, supplied by the Redis feature. */
export type GlobalConnectionQuotaFactory = (rule: RateLimitRule) => ConnectionQuota;
/** A FencingPolicy rule with its `sluice_fencing_checks_total` cells, bound once per plan. */
export interface FenceStep {
  readonly rule: FencingRule;
  /** Where the lock nodes keep the newest accepted token of the rule's resource. */
  readonly key: string;
  readonly counts: Readonly<Record<'accepted' | 'stale' | 'missing' | 'malformed' | 'unavailable' | 'failedOpen' | 'unchecked', CounterCell>>;
}

/** A Global rule's limiter, supplied by the Redis feature; it owns its fallback. */
export type GlobalLimiterFactory = (rule: RateLimitRule) => Limiter & { close(): void };

/**
 * Everything a plan needs at run time, built once per plan version: limiters, breakers and
 * bulkheads per rule. State is carried over from the previous chain for every rule whose id and
 * spec are unchanged, so a reload does not hand out fresh quotas or close open circuits.
 */
export class Chain {
  readonly plan: Plan;
  readonly limits: readonly LimitStep[];
  readonly breakers: readonly BreakerStep[];
  readonly websockets: readonly WebSocketStep[];
  readonly fences: readonly FenceStep[];
  /** Rules the sidecar cannot enforce as written, with the reason (shown in /config and logs). */
  readonly warnings: readonly string[];
  private readonly owned: Map<string, unknown>;

  constructor(plan: Plan, deps: {
    metrics: SidecarMetrics; now: () => number; globalLimiter?: GlobalLimiterFactory; globalConnections?: GlobalConnectionQuotaFactory;
    onCircuitChange?: CircuitChangeListener; fenceAvailable?: boolean; previous?: Chain;
  }) {
    this.plan = plan;
    const warnings: string[] = [];
    const prev = deps.previous?.owned ?? new Map<string, unknown>();
    const owned = new Map<string, unknown>();
    const reuse = <T>(key: string, make: () => T): T => {
      const v = (prev.get(key) as T | undefined) ?? make();
      owned.set(key, v);
      return v;
    };
    const m = deps.metrics;

    this.limits = plan.rateLimits.filter((r) => r.limit).map((rule) => {
      const limit = rule.limit!;
      let limiter: Limiter;
      if (rule.scope === 'Global' && deps.globalLimiter) {
        limiter = reuse(`global:${rule.id}:${JSON.stringify(rule.source)}`, () => deps.globalLimiter!(rule));
      } else {
        if (rule.scope === 'Global') warnings.push(`${rule.id}: scope Global needs --redis; enforcing the whole limit locally in this sidecar`);
        limiter = reuse(`limit:${rule.id}:${JSON.stringify(limit)}`, () => createLocalLimiter(limit));
      }
      return {
        rule,
        limiter,
        enforce: rule.mode === 'Enforce',
        allowed: m.rateLimitDecisions.cell(rule.id, rule.scope, 'allowed'),
        limited: m.rateLimitDecisions.cell(rule.id, rule.scope, rule.mode === 'Enforce' ? 'limited' : 'would_limit'),
        priority: rule.priority && new PriorityGate(rule.priority),
      };
    });
    const adaptiveSources = new Map<string, AdaptiveSource>();

    this.breakers = plan.breakers.map((rule) => {
      const gauge = m.circuitState.labels(rule.id);
      const breaker = reuse(`breaker:${rule.id}:${JSON.stringify(rule.source)}`, () => {
        gauge.set(0);
        return new CircuitBreaker(
          {
            trip: rule.trip,
            openMs: rule.openMs,
            maxOpenMs: rule.maxOpenMs,
            maxProbes: rule.halfOpen.maxProbes,
            successesToClose: rule.halfOpen.successesToClose,
          },
          (c: StateChange) => {
            gauge.set(c.to === 'closed' ? 0 : c.to === 'open' ? 1 : 2);
            m.circuitTransitions.labels(rule.id, c.from, c.to, c.reason).inc();
            deps.onCircuitChange?.(rule, c);
          },
        );
      });
      const priority = rule.priority && new PriorityGate(rule.priority);
      const adaptive = rule.adaptiveConcurrency && reuse(`adaptive:${rule.id}:${JSON.stringify(rule.adaptiveConcurrency)}`, () => createConcurrencyLimit(rule.adaptiveConcurrency!, deps.now()));
      // The adaptive limit shares the bulkhead's queue; without a bulkhead it has no queue at all
      // (a call over the limit is answered at once, as Envoy's adaptive concurrency filter does).
      const bulkhead = (rule.bulkhead || adaptive || priority) && reuse(
        `bulkhead:${rule.id}:${JSON.stringify([rule.bulkhead, rule.adaptiveConcurrency, rule.priority])}`,
        () => new Bulkhead({
          maxConcurrent: rule.bulkhead?.maxConcurrent ?? Infinity,
          maxPending: rule.bulkhead?.maxPending ?? 0,
          maxPendingWaitMs: rule.bulkhead?.maxPendingWaitMs ?? 0,
          adaptive,
          priority,
        }),
      );
      if (adaptive && bulkhead) adaptiveSources.set(rule.id, { get limit() { return bulkhead.limit; }, get inFlight() { return bulkhead.inFlight; }, get minRttMs() { return adaptive.minRttMs; } });
      return { rule, breaker, bulkhead, adaptive, priority, enforce: rule.mode === 'Enforce' };
    });
    m.adaptiveSources = adaptiveSources;

    this.websockets = plan.rateLimits.filter((r) => r.websocket).map((rule) => {
      const ws = rule.websocket!;
      let quota: ConnectionQuota | undefined;
      if (ws.maxConnectionsPerKey !== undefined) {
        // Keyed by what a lease belongs to, not by the max: changing the max keeps the counts.
        const id = `${rule.id}:${JSON.stringify(ws.connectionKey)}`;
        if (rule.scope === 'Global' && deps.globalConnections) {
          quota = reuse(`wsquota:global:${id}:${rule.failureMode}`, () => deps.globalConnections!(rule));
        } else {
          if (rule.scope === 'Global') warnings.push(`${rule.id}: scope Global needs --redis; counting maxConnectionsPerKey in this sidecar only`);
          quota = reuse(`wsquota:${id}`, () => new LocalConnectionQuota());
        }
      }
      return {
        rule,
        enforce: rule.mode === 'Enforce',
        maxConnections: ws.maxConnections,
        connectionRate: ws.connectionsPerSecond === undefined ? undefined
          : reuse(`wsrate:${rule.id}:${ws.connectionsPerSecond}`, () => new TokenBucket({ requests: ws.connectionsPerSecond!, perMs: 1000 })),
        messagesPerSecond: ws.messagesPerSecond,
        maxMessageBytes: ws.maxMessageBytes,
        open: reuse(`wsopen:${rule.id}`, () => ({ count: 0 })),
        maxConnectionsPerKey: ws.maxConnectionsPerKey,
        quota,
        quotaKey: ws.connectionKey && { key: ws.connectionKey },
      };
    });

    if (plan.fencing.length > 0 && !deps.fenceAvailable) warnings.push(`${plan.fencing.map((r) => r.id).join(', ')}: fencing needs --lock-nodes; every check answers as its failureMode says`);
    // Fencing keeps no state here: the newest accepted token lives on the lock nodes only.
    this.fences = plan.fencing.map((rule) => ({
      rule,
      key: acceptedTokenKey(rule.namespace, rule.resource.kind, rule.resource.name),
      counts: {
        accepted: m.fencingChecks.cell(rule.id, 'accepted'),
        stale: m.fencingChecks.cell(rule.id, 'stale'),
        missing: m.fencingChecks.cell(rule.id, 'missing'),
        malformed: m.fencingChecks.cell(rule.id, 'malformed'),
        unavailable: m.fencingChecks.cell(rule.id, 'unavailable'),
        failedOpen: m.fencingChecks.cell(rule.id, 'failed_open'),
        unchecked: m.fencingChecks.cell(rule.id, 'unchecked'),
      },
    }));

    this.warnings = warnings;
    this.owned = owned;
  }

  /** Releases what the previous chain held and this one does not (e.g. Global limiters' leases). */
  retire(next: Chain): void {
    for (const [key, v] of this.owned) {
      if (!next.owned.has(key) && typeof (v as { close?: unknown }).close === 'function') (v as { close(): void }).close();
    }
  }

  close(): void {
    for (const v of this.owned.values()) {
      if (typeof (v as { close?: unknown }).close === 'function') (v as { close(): void }).close();
    }
  }
}
