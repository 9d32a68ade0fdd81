import type { Decision, Limiter } from './limiter.ts';
import { KeyedStore } from './keyed-store.ts';

interface WindowState {
  start: number;
  previous: number;
  current: number;
}

/**
 * Sliding window counter: the count of the current fixed window plus the previous window's count
 * weighted by how much of it still overlaps the sliding window. Constant memory per partition,
 * and it never admits more than `requests` in any window aligned to the grid, with smooth
 * behaviour across window edges (no double burst as a fixed window would allow).
 */
export class SlidingWindow implements Limiter {
  private readonly limit: number;
  private readonly window: number;
  private readonly store: KeyedStore<WindowState>;

  constructor(opts: { requests: number; perMs: number; maxKeys?: number }) {
    if (!(opts.requests >= 1)) throw new RangeError('SlidingWindow: requests must be ≥ 1');
    if (!(opts.perMs > 0)) throw new RangeError('SlidingWindow: perMs must be > 0');
    this.limit = opts.requests;
    this.window = opts.perMs;
    this.store = new KeyedStore({
      maxKeys: opts.maxKeys ?? 100_000,
      create: () => ({ start: -Infinity, previous: 0, current: 0 }),
      isIdle: (s, now) => now - s.start >= 2 * this.window,
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
    if (estimate + 1 > this.limit + 1e-9) {
      this.store.protect(key);
      return { allowed: false, limit: this.limit, remaining: 0, resetMs, retryAfterMs: this.retryAfter(s, elapsed) };
    }
    s.current++;
    return {
      allowed: true,
      limit: this.limit,
      remaining: Math.max(0, Math.floor(this.limit - estimate - 1)),
      resetMs,
      retryAfterMs: 0,
    };
  }

  /** How long until the weighted estimate leaves room for one more request. */
  private retryAfter(s: WindowState, elapsed: number): number {
    const w = this.window;
    const room = this.limit - 1;
    if (s.current <= room && s.previous > 0) {
      // Wait for the previous window's weight to decay: previous·(w−elapsed−d)/w + current ≤ room.
      return Math.max(1, Math.ceil(w - elapsed - ((room - s.current) * w) / s.previous));
    }
    // The current window alone is full: next window, once current's carried weight has decayed.
    const carried = s.current > 0 ? Math.max(0, w * (1 - room / s.current)) : 0;
    return Math.max(1, Math.ceil(w - elapsed + carried));
  }
}
