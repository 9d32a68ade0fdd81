/**
 * How often one kind of Event may be written for one object: a token bucket per key (burst, then
 * one per `everyMs`), like client-go's spam filter, so a flapping source cannot flood the API
 * server. What is held back is counted and handed to the next Event that goes through, so the
 * narrative says "and 40 more". Pure: the caller passes the time; the number of keys is bounded
 * (the oldest key is forgotten first).
 */
export interface ThrottleVerdict {
  readonly allowed: boolean;
  /** Held back for this key since the last allowed one (only meaningful when allowed). */
  readonly suppressed: number;
}

interface Bucket {
  tokens: number;
  at: number;
  suppressed: number;
}

export class EventThrottle {
  private readonly burst: number;
  private readonly everyMs: number;
  private readonly maxKeys: number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(opts: { burst: number; everyMs: number; maxKeys?: number }) {
    if (!(opts.burst >= 1)) throw new RangeError('EventThrottle: burst must be ≥ 1');
    if (!(opts.everyMs > 0)) throw new RangeError('EventThrottle: everyMs must be > 0');
    this.burst = opts.burst;
    this.everyMs = opts.everyMs;
    this.maxKeys = opts.maxKeys ?? 10_000;
  }

  get size(): number {
    return this.buckets.size;
  }

  take(key: string, now: number): ThrottleVerdict {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string);
      b = { tokens: this.burst, at: now, suppressed: 0 };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + Math.max(0, now - b.at) / this.everyMs);
    b.at = now;
    if (b.tokens < 1) {
      b.suppressed++;
      return { allowed: false, suppressed: b.suppressed };
    }
    b.tokens -= 1;
    const suppressed = b.suppressed;
    b.suppressed = 0;
    return { allowed: true, suppressed };
  }
}
