import type { Clock } from '../../../lib/clock.ts';

/**
 * Caps how fast a sidecar takes tasks off one queue (`spec.rateLimit`, per pod). A token bucket
 * that can hand out several tokens at once — reads fetch up to N entries in one XREADGROUP — and
 * take back what a read did not use, so an idle queue does not waste its allowance on empty reads.
 * Burst is one period's worth of requests.
 */
export class ConsumptionPacer {
  private readonly ratePerMs: number;
  private readonly capacity: number;
  private readonly clock: Clock;
  private tokens: number;
  private last: number;

  constructor(limit: { readonly requests: number; readonly perMs: number } | undefined, clock: Clock) {
    if (limit && !(limit.requests >= 1 && limit.perMs > 0)) throw new RangeError('ConsumptionPacer: requests ≥ 1 and perMs > 0');
    this.ratePerMs = limit ? limit.requests / limit.perMs : Infinity;
    this.capacity = limit ? limit.requests : Infinity;
    this.clock = clock;
    this.tokens = this.capacity;
    this.last = clock.now();
  }

  get limited(): boolean {
    return this.capacity !== Infinity;
  }

  /** Takes up to `want` whole tokens and returns how many it got (0 when the bucket is empty). */
  take(want: number): number {
    if (!this.limited) return want;
    this.refill();
    const got = Math.min(want, Math.floor(this.tokens));
    this.tokens -= got;
    return got;
  }

  /** Gives back tokens a read did not use. */
  refund(n: number): void {
    if (!this.limited || n <= 0) return;
    this.tokens = Math.min(this.capacity, this.tokens + n);
  }

  /** Milliseconds until at least one token is available. */
  waitMs(): number {
    if (!this.limited) return 0;
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) / this.ratePerMs);
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.last) * this.ratePerMs);
    this.last = now;
  }
}
