import type { Decision, Limiter } from './limiter.ts';
import { KeyedStore } from './keyed-store.ts';
import type { WarmUpPlan } from '../../../lib/policy/adaptive.ts';
import { nextColdness, warmFactor } from './warm-up.ts';

/**
 * Token bucket as GCRA (generic cell rate algorithm): the whole state of a partition is one number,
 * its theoretical arrival time (TAT). Refill is lazy — computed from the clock when a request
 * comes — so an idle bucket costs nothing and there is no timer per bucket. `requests` per `perMs`
 * is the refill rate and `burst` the capacity.
 *
 * With warm-up (warm-up.ts) each partition also keeps its coldness; while cold, tokens are spaced
 * further apart (interval / factor) over the same time span, so both the rate and the burst are
 * scaled by the factor.
 */
export class TokenBucket implements Limiter {
  private readonly interval: number;
  private readonly capacityMs: number;
  private readonly burst: number;
  private readonly store: KeyedStore<{ tat: number; cold: number; at: number }>;
  private readonly warmUp: WarmUpPlan | undefined;

  constructor(opts: { requests: number; perMs: number; burst?: number; maxKeys?: number; warmUp?: WarmUpPlan }) {
    if (!(opts.requests >= 1)) throw new RangeError('TokenBucket: requests must be ≥ 1');
    if (!(opts.perMs > 0)) throw new RangeError('TokenBucket: perMs must be > 0');
    this.burst = opts.burst ?? opts.requests;
    if (!(this.burst >= 1)) throw new RangeError('TokenBucket: burst must be ≥ 1');
    this.interval = opts.perMs / opts.requests;
    this.capacityMs = this.burst * this.interval;
    this.warmUp = opts.warmUp;
    const idleAfter = opts.warmUp?.periodMs ?? 0;
    this.store = new KeyedStore({
      maxKeys: opts.maxKeys ?? 100_000,
      create: () => ({ tat: -Infinity, cold: 1, at: -Infinity }),
      // A warming partition is forgotten only once a quiet spell has made it cold again.
      isIdle: (s, now) => s.tat + idleAfter <= now,
    });
  }

  get keys(): number {
    return this.store.size;
  }

  /** Estimated bytes of partition state held. */
  get bytes(): number {
    return this.store.bytes;
  }

  /**
   * `reserve`: tokens that must still be left after this one (a priority level's share kept for
   * higher levels); a refusal for it takes nothing.
   */
  consume(key: string, now: number, reserve = 0): Decision {
    const state = this.store.get(key, now);
    let interval = this.interval;
    if (this.warmUp) {
      if (state.at === -Infinity) state.at = now;
      state.cold = nextColdness(state.cold, state.at, now, state.tat, this.warmUp.periodMs);
      state.at = now;
      interval = this.interval / warmFactor(state.cold, this.warmUp);
    }
    const tat = state.tat > now ? state.tat : now;
    const next = tat + interval;
    const ahead = next - now;
    const room = this.capacityMs - reserve * interval;
    if (ahead > room + 1e-9) {
      this.store.protect(key);
      return {
        allowed: false,
        limit: this.burst,
        remaining: 0,
        resetMs: Math.ceil(tat - now),
        retryAfterMs: Math.max(1, Math.ceil(ahead - room)),
        ...(ahead <= this.capacityMs + 1e-9 ? { reserved: true } : {}),
      };
    }
    state.tat = next;
    return {
      allowed: true,
      limit: this.burst,
      remaining: Math.floor((this.capacityMs - ahead) / interval + 1e-9),
      resetMs: Math.ceil(ahead),
      retryAfterMs: 0,
    };
  }
}
