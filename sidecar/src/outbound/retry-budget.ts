import type { Clock } from '../../../lib/clock.ts';

export interface RetryBudgetSpec {
  /** Retries allowed as a percentage of calls in the window. */
  readonly percent: number;
  /** Retries allowed per second whatever the call rate. */
  readonly minPerSecond: number;
  readonly windowMs: number;
}

const BUCKETS = 10;

/**
 * How many retries an Upstream may send, as Linkerd's and Finagle's retry budgets: over a sliding
 * window of `windowMs`, retries stay at or under `minPerSecond × window + percent × calls`. When
 * every call fails, retries stop at the budget instead of multiplying the load on a dependency
 * that is already down. Counted in ten buckets, so the window slides in tenths.
 */
export class RetryBudget {
  private readonly calls = new Float64Array(BUCKETS);
  private readonly retries = new Float64Array(BUCKETS);
  private readonly bucketMs: number;
  private bucket = 0;
  private bucketStart: number;

  private readonly spec: RetryBudgetSpec;
  private readonly clock: Clock;

  constructor(spec: RetryBudgetSpec, clock: Clock) {
    this.spec = spec;
    this.clock = clock;
    if (!(spec.percent >= 0 && spec.percent <= 100)) throw new RangeError('retry budget percent must be within 0..100');
    if (!(spec.minPerSecond >= 0)) throw new RangeError('retry budget minPerSecond must be ≥ 0');
    if (!(spec.windowMs >= BUCKETS)) throw new RangeError(`retry budget window must be ≥ ${BUCKETS} ms`);
    this.bucketMs = spec.windowMs / BUCKETS;
    this.bucketStart = clock.now();
  }

  /** A new call (not a retry) started: it earns `percent` % of a retry. */
  recordCall(): void {
    this.advance();
    this.calls[this.bucket]! += 1;
  }

  /** Takes one retry from the budget, or says no when it is spent. */
  tryAcquire(): boolean {
    this.advance();
    if (this.sum(this.retries) + 1 > this.allowed()) return false;
    this.retries[this.bucket]! += 1;
    return true;
  }

  /** Retries the window allows right now. */
  allowed(): number {
    this.advance();
    return (this.spec.minPerSecond * this.spec.windowMs) / 1000 + (this.spec.percent / 100) * this.sum(this.calls);
  }

  private sum(a: Float64Array): number {
    let s = 0;
    for (const v of a) s += v;
    return s;
  }

  private advance(): void {
    const now = this.clock.now();
    let steps = Math.floor((now - this.bucketStart) / this.bucketMs);
    if (steps <= 0) return;
    this.bucketStart += steps * this.bucketMs;
    if (steps > BUCKETS) steps = BUCKETS;
    for (let i = 0; i < steps; i++) {
      this.bucket = (this.bucket + 1) % BUCKETS;
      this.calls[this.bucket] = 0;
      this.retries[this.bucket] = 0;
    }
  }
}
