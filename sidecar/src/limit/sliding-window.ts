import type { Decision, Limiter } from './limiter.ts';
import { KeyedStore } from './keyed-store.ts';
import type { WarmUpPlan } from '../../../lib/policy/adaptive.ts';
import { nextColdness, warmFactor } from './warm-up.ts';

interface WindowState {
  start: number;
  previous: number;
  current: number;
  /** Warm-up only: coldness (1 cold … 0 warm) as of `at`. */
  cold: number;
  at: number;
}

/**
 * Sliding window counter: the count of the current fixed window plus the previous window's count
 * weighted by how much of it still overlaps the sliding window. Constant memory per partition,
 * and it never admits more than `requests` in any window aligned to the grid, with smooth
 * behaviour across window edges (no double burst as a fixed window would allow).
 *
 * With warm-up (warm-up.ts) the window admits `requests × factor(coldness)`; the time since the
 * previous request counts as "in use" when the weighted count is at least the cold limit.
 */
export class SlidingWindow implements Limiter {
  private readonly limit: number;
  private readonly window: number;
  private readonly store: KeyedStore<WindowState>;
  private readonly warmUp: WarmUpPlan | undefined;

  constructor(opts: { requests: number; perMs: number; maxKeys?: number; warmUp?: WarmUpPlan }) {
    if (!(opts.requests >= 1)) throw new RangeError('SlidingWindow: requests must be ≥ 1');
    if (!(opts.perMs > 0)) throw new RangeError('SlidingWindow: perMs must be > 0');
    this.limit = opts.requests;
    this.window = opts.perMs;
    this.warmUp = opts.warmUp;
    const idleAfter = 2 * this.window + (opts.warmUp?.periodMs ?? 0);
    this.store = new KeyedStore({
      maxKeys: opts.maxKeys ?? 100_000,
      create: () => ({ start: -Infinity, previous: 0, current: 0, cold: 1, at: -Infinity }),
      isIdle: (s, now) => now - s.start >= idleAfter,
    });
  }

  get keys(): number {
    return this.store.size;
  }

  /** Estimated bytes of partition state held. */
  get bytes(): number {
    return this.store.bytes;
  }

  /** `reserve`: requests of the window that must stay unused after this one (priority levels). */
  consume(key: string, now: number, reserve = 0): Decision {
    const w = this.window;
    const s = this.store.get(key, now);
    const start = Math.floor(now / w) * w;
    if (start !== s.start) {
      s.previous = start - s.start === w ? s.current : 0;
      s.current = 0;
      s.start = start;
    }
    const elapsed = now - start;
    const weight = (w - elapsed) / w;
    const estimate = s.previous * weight + s.current;
    const resetMs = Math.ceil(w - elapsed);
    let limit = this.limit;
    if (this.warmUp) {
      if (s.at === -Infinity) s.at = now;
      const inUse = estimate >= this.limit / this.warmUp.coldFactor;
      s.cold = nextColdness(s.cold, s.at, now, inUse ? now : s.at, this.warmUp.periodMs);
      s.at = now;
      limit = Math.max(1, Math.floor(this.limit * warmFactor(s.cold, this.warmUp) + 1e-9));
    }
    if (estimate + 1 > limit - reserve + 1e-9) {
      this.store.protect(key);
      const reserved = estimate + 1 <= limit + 1e-9;
      return { allowed: false, limit, remaining: Math.max(0, Math.floor(limit - estimate)), resetMs, retryAfterMs: this.retryAfter(s, elapsed, limit - reserve), ...(reserved ? { reserved } : {}) };
    }
    s.current++;
    return {
      allowed: true,
      limit,
      remaining: Math.max(0, Math.floor(limit - estimate - 1)),
      resetMs,
      retryAfterMs: 0,
    };
  }

  /** How long until the weighted estimate leaves room for one more request. */
  private retryAfter(s: WindowState, elapsed: number, limit: number): number {
    const w = this.window;
    const room = Math.max(0, limit - 1);
    if (s.current <= room && s.previous > 0) {
      // Wait for the previous window's weight to decay: previous·(w−elapsed−d)/w + current ≤ room.
      return Math.max(1, Math.ceil(w - elapsed - ((room - s.current) * w) / s.previous));
    }
    // The current window alone is full: next window, once current's carried weight has decayed.
    const carried = s.current > 0 ? Math.max(0, w * (1 - room / s.current)) : 0;
    return Math.max(1, Math.ceil(w - elapsed + carried));
  }
}
