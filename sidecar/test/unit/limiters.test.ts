import { describe, expect, it } from 'vitest';
import { KeyedStore } from '../../src/limit/keyed-store.ts';
import { SlidingWindow } from '../../src/limit/sliding-window.ts';
import { TokenBucket } from '../../src/limit/token-bucket.ts';
import { ManualClock } from '../../../lib/clock.ts';

function drain(l: TokenBucket | SlidingWindow, key: string, now: number): number {
  let n = 0;
  while (l.consume(key, now).allowed) n++;
  return n;
}

describe('TokenBucket (GCRA)', () => {
  it('admits the burst at once, then refills lazily at the rate', () => {
    const clock = new ManualClock(1_000);
    const b = new TokenBucket({ requests: 10, perMs: 1000, burst: 20 });
    expect(drain(b, 'k', clock.now())).toBe(20);
    const refused = b.consume('k', clock.now());
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterMs).toBe(100); // one token per 100 ms
    clock.advance(100);
    expect(b.consume('k', clock.now()).allowed).toBe(true);
    expect(b.consume('k', clock.now()).allowed).toBe(false);
    clock.advance(1_000);
    expect(drain(b, 'k', clock.now())).toBe(10);
  });

  it('reports remaining tokens and time to full', () => {
    const b = new TokenBucket({ requests: 5, perMs: 1000 });
    const d = b.consume('k', 0);
    expect(d).toMatchObject({ allowed: true, limit: 5, remaining: 4, resetMs: 200 });
  });

  it('keeps partitions apart', () => {
    const b = new TokenBucket({ requests: 1, perMs: 1000 });
    expect(b.consume('a', 0).allowed).toBe(true);
    expect(b.consume('a', 0).allowed).toBe(false);
    expect(b.consume('b', 0).allowed).toBe(true);
  });

  it('refuses nonsense with RangeError', () => {
    expect(() => new TokenBucket({ requests: 0, perMs: 1000 })).toThrow(RangeError);
    expect(() => new TokenBucket({ requests: 1, perMs: 0 })).toThrow(RangeError);
  });

  it('bounds keyed state: idle keys are evicted, and never more than maxKeys', () => {
    const b = new TokenBucket({ requests: 1, perMs: 1000, maxKeys: 100 });
    for (let i = 0; i < 1000; i++) b.consume(`k${i}`, 0);
    expect(b.keys).toBeLessThanOrEqual(100);
    // After a full refill every old key is idle; new keys sweep them out.
    for (let i = 0; i < 100; i++) b.consume(`n${i}`, 10_000);
    expect(b.keys).toBeLessThanOrEqual(100);
  });
});

describe('SlidingWindow', () => {
  it('admits the limit per window and weighs the previous window as it slides', () => {
    const clock = new ManualClock(0);
    const w = new SlidingWindow({ requests: 10, perMs: 1000 });
    expect(drain(w, 'k', clock.now())).toBe(10);
    const refused = w.consume('k', clock.now());
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    clock.advance(1000); // next window: the previous 10 still weigh 100 %
    expect(w.consume('k', clock.now()).allowed).toBe(false);
    clock.advance(500); // half of the previous window still overlaps: 5 + current ≤ 10
    expect(drain(w, 'k', clock.now())).toBe(5);
    clock.advance(2000); // two windows later nothing weighs
    expect(drain(w, 'k', clock.now())).toBe(10);
  });

  it('never admits more than the limit in any aligned window, however requests arrive', () => {
    const w = new SlidingWindow({ requests: 50, perMs: 1000 });
    const admittedPerWindow = new Map<number, number>();
    for (let t = 0; t < 5000; t += 3) {
      if (w.consume('k', t).allowed) admittedPerWindow.set(Math.floor(t / 1000), (admittedPerWindow.get(Math.floor(t / 1000)) ?? 0) + 1);
    }
    for (const n of admittedPerWindow.values()) expect(n).toBeLessThanOrEqual(50);
    expect([...admittedPerWindow.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(200);
  });

  it('tells when the next request would pass', () => {
    const w = new SlidingWindow({ requests: 2, perMs: 1000 });
    w.consume('k', 0);
    w.consume('k', 0);
    const d = w.consume('k', 0);
    expect(d.allowed).toBe(false);
    // At t = retryAfter the request must pass.
    expect(w.consume('k', d.retryAfterMs).allowed).toBe(true);
  });
});

describe('KeyedStore', () => {
  it('evicts least recently used entries past maxKeys', () => {
    const s = new KeyedStore<{ n: number }>({ maxKeys: 3, create: () => ({ n: 0 }), isIdle: () => false });
    s.get('a', 0).n = 1;
    s.get('b', 0);
    s.get('c', 0);
    s.get('a', 0); // a is now the most recent
    s.get('d', 0); // evicts b
    expect(s.size).toBe(3);
    expect(s.get('a', 0).n).toBe(1);
    expect(s.evictions).toBe(1);
  });
});
