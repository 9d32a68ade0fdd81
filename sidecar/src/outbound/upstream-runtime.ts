import type { Clock } from '../../../lib/clock.ts';
import type { UpstreamPlan } from '../../../lib/policy/upstream.ts';
import { recordLatency, type Endpoint } from './endpoint.ts';
import { EndpointSet } from './endpoint-set.ts';
import { createPicker, type Picker, type Random } from './load-balancer.ts';
import type { PolicyEngine } from '../policy-engine/engine.ts';
import type { OutboundMetrics } from './outbound-metrics.ts';
import { OutlierDetector } from './outlier-detector.ts';
import { RetryBudget } from './retry-budget.ts';

export type TryResult = 'ok' | 'failure' | 'connect_failure' | 'reset' | 'timeout' | 'cancelled';

/**
 * Everything one Upstream's calls share: the compiled plan, the endpoint set, the picker, the
 * retry budget and the outlier detector. Protocol listeners (outbound-grpc.ts, outbound-http.ts)
 * drive calls through it; the decisions themselves stay in their own pure modules.
 */
export class UpstreamRuntime {
  plan: UpstreamPlan;
  /**
   * The policy engine, set only while some RateLimitPolicy or CircuitBreakerPolicy rule names this
   * Upstream (`match.upstream`): calls through an unguarded Upstream skip the engine entirely.
   */
  guard: PolicyEngine | undefined;
  readonly endpoints: EndpointSet;
  readonly clock: Clock;
  readonly random: Random;
  private picker: Picker;
  private budget: RetryBudget;
  private detector: OutlierDetector;
  private readonly metrics: OutboundMetrics;
  /** Label children bound once per upstream (and endpoint, outcome) rather than resolved per call. */
  private readonly callCounters = new Map<string, { inc(): void }>();
  private readonly tryCounters = new Map<string, { inc(): void }>();
  private durationChild: { observe(v: number): void } | undefined;

  constructor(plan: UpstreamPlan, deps: { clock: Clock; metrics: OutboundMetrics; random?: Random; onEndpointRemoved?: (ep: Endpoint) => void }) {
    this.plan = plan;
    this.clock = deps.clock;
    this.random = deps.random ?? Math.random;
    this.metrics = deps.metrics;
    this.endpoints = new EndpointSet((ep) => {
      this.forgetEndpoint(ep);
      deps.onEndpointRemoved?.(ep);
    });
    this.picker = createPicker(plan.loadBalancer.algorithm, plan.loadBalancer.slowStartMs, this.random);
    this.budget = new RetryBudget(plan.retry.budget, this.clock);
    this.detector = new OutlierDetector(plan.outlierDetection);
  }

  /** An endpoint that left the set takes its metric series with it: pod churn must not grow them forever. */
  private forgetEndpoint(ep: Endpoint): void {
    for (const key of [...this.tryCounters.keys()]) {
      if (!key.startsWith(`${ep.address} `)) continue;
      this.tryCounters.delete(key);
      this.metrics.tries.remove({ upstream: this.plan.id, endpoint: ep.address, outcome: key.slice(ep.address.length + 1) });
    }
    this.metrics.ejections.remove({ upstream: this.plan.id, endpoint: ep.address });
  }

  /** A new generation of the same Upstream (same listen and protocol): swap the decisions. */
  update(plan: UpstreamPlan): void {
    const old = this.plan;
    this.plan = plan;
    if (JSON.stringify(old.loadBalancer) !== JSON.stringify(plan.loadBalancer)) this.picker = createPicker(plan.loadBalancer.algorithm, plan.loadBalancer.slowStartMs, this.random);
    if (JSON.stringify(old.retry.budget) !== JSON.stringify(plan.retry.budget)) this.budget = new RetryBudget(plan.retry.budget, this.clock);
    if (JSON.stringify(old.outlierDetection) !== JSON.stringify(plan.outlierDetection)) this.detector = new OutlierDetector(plan.outlierDetection);
  }

  setEndpoints(addresses: readonly string[]): void {
    this.endpoints.update(addresses, this.clock.now());
  }

  /** A new call (not a retry): it earns retry budget. */
  callStarted(): void {
    this.budget.recordCall();
  }

  pick(avoid?: ReadonlySet<Endpoint>): Endpoint | undefined {
    return this.picker.pick(this.endpoints.all, this.clock.now(), avoid);
  }

  tryStarted(ep: Endpoint): void {
    ep.outstanding++;
  }

  /**
   * A try ended. `latencyMs` is time to the response headers, when there were any. Failures
   * (connect, reset, timeout, a failing status) feed outlier detection; cancelled tries do not.
   */
  tryEnded(ep: Endpoint, result: TryResult, latencyMs?: number): void {
    ep.outstanding--;
    const now = this.clock.now();
    if (latencyMs !== undefined) recordLatency(ep, latencyMs);
    const key = `${ep.address} ${result}`;
    let tries = this.tryCounters.get(key);
    if (!tries) this.tryCounters.set(key, (tries = this.metrics.tries.labels({ upstream: this.plan.id, endpoint: ep.address, outcome: result })));
    tries.inc();
    if (result === 'ok') this.detector.success(ep, now);
    else if (result !== 'cancelled' && this.detector.failure(ep, this.endpoints.all, now)) {
      this.metrics.ejections.inc({ upstream: this.plan.id, endpoint: ep.address });
    }
  }

  /** Asks the budget for one retry; counted either way. */
  acquireRetry(): boolean {
    if (this.budget.tryAcquire()) {
      this.metrics.retries.inc({ upstream: this.plan.id });
      return true;
    }
    this.metrics.budgetExhausted.inc({ upstream: this.plan.id });
    return false;
  }

  callEnded(outcome: string, seconds: number): void {
    let calls = this.callCounters.get(outcome);
    if (!calls) this.callCounters.set(outcome, (calls = this.metrics.calls.labels({ upstream: this.plan.id, outcome })));
    calls.inc();
    (this.durationChild ??= this.metrics.duration.labels({ upstream: this.plan.id })).observe(seconds);
  }

  /** For /v1/status, the live page and the endpoints gauge. */
  snapshot(): { id: string; listen: string; protocol: string; endpoints: { address: string; outstanding: number; ewmaMs: number | undefined; ejected: boolean }[] } {
    const now = this.clock.now();
    return {
      id: this.plan.id,
      listen: `${this.plan.listen.host}:${this.plan.listen.port}`,
      protocol: this.plan.protocol,
      endpoints: this.endpoints.all.map((e) => ({ address: e.address, outstanding: e.outstanding, ewmaMs: e.ewmaMs === undefined ? undefined : Math.round(e.ewmaMs * 100) / 100, ejected: e.isEjected(now) })),
    };
  }
}
