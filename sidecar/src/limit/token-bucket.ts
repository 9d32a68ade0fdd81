import type { Decision, Limiter } from './limiter.ts';
import { KeyedStore } from './keyed-store.ts';

/**
 * Token bucket as GCRA (generic cell rate algorithm): the whole state of a partition is one number,
 * its theoretical arrival time (TAT). Refill is lazy — computed from the clock when a request
 * comes — so an idle bucket costs nothing and there is no timer per bucket. `requests` per `perMs`
 * is the refill rate and `burst` the capacity.
 */
export class TokenBucket implements Limiter {
  private readonly interval: number;
  private readonly capacityMs: number;
  private readonly burst: number;
  private readonly store: KeyedStore<{ tat: number }>;

  constructor(opts: { requests: number; perMs: number; burst?: number; maxKeys?: number }) {
    if (!(opts.requests >= 1)) throw new RangeError('TokenBucket: requests must be ≥ 1');
    if (!(opts.perMs > 0)) throw new RangeError('TokenBucket: perMs must be > 0');
    this.burst = opts.burst ?? opts.requests;
    if (!(this.burst >= 1)) throw new RangeError('TokenBucket: burst must be ≥ 1');
    this.interval = opts.perMs / opts.requests;
    this.capacityMs = this.burst * this.interval;
    this.store = new KeyedStore({
      maxKeys: opts.maxKeys ?? 100_000,
      create: () => ({ tat: -Infinity }),
      isIdle: (s, now) => s.tat <= now,
    });
  }

  get keys(): number {
    return this.store.size;
  }

  /** Estimated bytes of partition state held. */
  get bytes(): number {
    return this.store.bytes;
  }

  consume(key: string, now: number): Decision {
    const state = this.store.get(key, now);
    const tat = state.tat > now ? state.tat : now;
    const next = tat + this.interval;
    const ahead = next - now;
    if (ahead > this.capacityMs + 1e-9) {
      this.store.protect(key);
      return {
        allowed: false,
        limit: this.burst,
        remaining: 0,
        resetMs: Math.ceil(tat - now),
        retryAfterMs: Math.ceil(ahead - this.capacityMs),
      };
    }
    state.tat = next;
    return {
      allowed: true,
      limit: this.burst,
      remaining: Math.floor((this.capacityMs - ahead) / this.interval + 1e-9),
      resetMs: Math.ceil(ahead),
      retryAfterMs: 0,
    };
  }
}
