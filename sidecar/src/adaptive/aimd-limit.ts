import type { AdaptiveConcurrencyPlan } from '../../../lib/policy/adaptive.ts';
import { percentile, type ConcurrencyLimit } from './concurrency-limit.ts';

/**
 * Additive increase, multiplicative decrease, judged once per `sampleWindow`: a window whose p90
 * latency passed `latencyThreshold`, or that saw an overload answer, multiplies the limit by
 * `backoff`; any other window with calls in it adds one. (Netflix's AIMD
 * judges every call; a window keeps one slow call from halving the limit of a busy rule.)
 * Simpler than the gradient and needs a threshold from the user: it knows nothing of the app's
 * no-load latency, only whether it is too slow.
 */
export class AimdLimit implements ConcurrencyLimit {
  private readonly plan: AdaptiveConcurrencyPlan;
  private current: number;
  private windowStart: number;
  private window: number[] = [];
  private overloadedInWindow = false;
  private fastest: number | undefined;

  constructor(plan: AdaptiveConcurrencyPlan, now: number) {
    this.plan = plan;
    this.current = plan.initialLimit;
    this.windowStart = now;
  }

  get limit(): number {
    return this.current;
  }

  /** The fastest call seen, for the metric: AIMD itself never uses it. */
  get minRttMs(): number | undefined {
    return this.fastest;
  }

  onSample(now: number, rttMs: number, _startedAt: number, overloaded: boolean): void {
    this.window.push(rttMs);
    if (this.fastest === undefined || rttMs < this.fastest) this.fastest = rttMs;
    if (overloaded) this.overloadedInWindow = true;
    if (now - this.windowStart < this.plan.sampleWindowMs) return;
    const slow = percentile(this.window, 0.9) > (this.plan.latencyThresholdMs ?? Infinity);
    let next = this.current;
    if (slow || this.overloadedInWindow) next = Math.floor(this.current * this.plan.backoff);
    else if (this.window.length > 0) next = this.current + 1;
    this.current = Math.min(this.plan.maxLimit, Math.max(this.plan.minLimit, next));
    this.windowStart = now;
    this.window = [];
    this.overloadedInWindow = false;
  }
}
