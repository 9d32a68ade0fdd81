/**
 * Lease accounting for one partition of a Global rule, pure and clock-driven so it can be tested
 * with fake time.
 *
 * A sidecar in lease mode takes a batch of tokens from Redis in one script call (the tokens are
 * debited from the shared bucket/window right then) and answers the next requests locally from
 * that batch. Because every admitted request spends a token already debited in Redis, the total
 * admitted by all sidecars never exceeds what the shared limit granted. What leasing changes is
 * *when* a token is spent: a token debited at t may be used up to `leaseMs` later. So over any
 * window of time, admissions can exceed the limit by at most the tokens sidecars held when the
 * window began:
 *
 *     over-admission ≤ N × maxHeld,  maxHeld = maxBatch + lowWater  (< 1.5 × maxBatch)
 *
 * with N the sidecars serving the partition. maxBatch defaults to 0.5 % of the rule's capacity, so
 * two sidecars stay within 1.5 % in the worst window and within 0 % over a whole run (see
 * docs/leader-election.md § Global limits and the over-admission test).
 *
 * The batch adapts to demand: about `horizonMs` worth of this sidecar's recent request rate, at
 * least 1 and at most maxBatch — a quiet sidecar takes one token at a time and wastes none — plus
 * one token for each request already waiting for it (spent on arrival, never held).
 */
export interface LeaseOptions {
  /** Most tokens taken in one call. */
  readonly maxBatch: number;
  /** Unused tokens are dropped this long after the call that leased them was sent. */
  readonly leaseMs: number;
  /** A batch is sized to last about this long at the recent request rate. */
  readonly horizonMs: number;
}

export class PartitionLease {
  /** Tokens leased and not yet spent. */
  tokens = 0;
  /** Monotonic ms after which `tokens` are void. */
  expiresAt = 0;
  /** Redis said no batch is available before this monotonic time. */
  deniedUntil = 0;
  /** The shared remaining count and reset as Redis last reported them (for the headers). */
  sharedRemaining = 0;
  resetAt = 0;
  /** A refill call is in flight; its result is awaited by requests that found no token. */
  refill: Promise<boolean> | undefined = undefined;
  /**
   * Requests waiting for a refill right now. The next batch asks for at least this many: they
   * spend their tokens the moment it arrives, so none of them is ever held (the bound above is
   * unchanged), and a burst of concurrent requests on a quiet partition is not refused for want of
   * a bigger batch while the shared limit has room.
   */
  waiting = 0;
  private demand = 0;
  private demandSince: number;

  constructor(now: number) {
    this.demandSince = now;
  }

  /** Spends one leased token if there is a valid one. */
  take(now: number): boolean {
    this.demand++;
    if (this.tokens <= 0) return false;
    if (now >= this.expiresAt) {
      this.tokens = 0;
      return false;
    }
    this.tokens--;
    return true;
  }

  /** Whether to start a background refill now, so the hot path rarely waits for Redis. */
  wantsRefill(now: number, opts: LeaseOptions): boolean {
    return this.refill === undefined && now >= this.deniedUntil && this.tokens < lowWater(opts);
  }

  /** The size of the next batch and the fewest tokens worth a grant (see GCRA's `min`). */
  nextBatch(now: number, opts: LeaseOptions): { want: number; min: number } {
    const elapsed = Math.max(1, now - this.demandSince);
    const rate = this.demand / elapsed;
    this.demand = 0;
    this.demandSince = now;
    const want = Math.max(1, Math.min(opts.maxBatch, Math.ceil(rate * opts.horizonMs)));
    return { want, min: Math.max(1, Math.floor(want / 2)) };
  }

  /** Records Redis' answer to a call sent at `sentAt` and answered at `now`. */
  settle(answer: { granted: number; remaining: number; retryAfterMs: number; resetMs: number }, sentAt: number, now: number, opts: LeaseOptions): void {
    this.sharedRemaining = answer.remaining;
    this.resetAt = now + answer.resetMs;
    if (answer.granted > 0) {
      // Measured from when the call was sent: the tokens were debited no earlier than that.
      this.tokens = (now < this.expiresAt ? this.tokens : 0) + answer.granted;
      this.expiresAt = sentAt + opts.leaseMs;
      this.deniedUntil = 0;
    } else {
      this.deniedUntil = now + answer.retryAfterMs;
    }
  }

  /** A partition with nothing leased, nothing pending and no denial in force can be forgotten. */
  idle(now: number): boolean {
    return this.refill === undefined && (this.tokens === 0 || now >= this.expiresAt) && now >= this.deniedUntil;
  }
}

export function lowWater(opts: LeaseOptions): number {
  return Math.floor(opts.maxBatch / 2);
}

/** The default batch cap: 0.5 % of the rule's capacity (≥ 1), see the bound above. */
export function defaultMaxBatch(capacity: number, fraction = 0.005): number {
  return Math.max(1, Math.floor(capacity * fraction));
}
