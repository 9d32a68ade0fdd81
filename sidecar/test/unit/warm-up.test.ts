import { describe, expect, it } from 'vitest';
import { SlidingWindow } from '../../src/limit/sliding-window.ts';
import { TokenBucket } from '../../src/limit/token-bucket.ts';
import { nextColdness, warmFactor } from '../../src/limit/warm-up.ts';
import type { Limiter } from '../../src/limit/limiter.ts';

const warmUp = { periodMs: 10_000, coldFactor: 4 };

/** Offers `perSecond` requests spread evenly over each second; returns what was admitted per second. */
function offer(l: Limiter, fromMs: number, seconds: number, perSecond: number): number[] {
  const admitted: number[] = [];
  for (let s = 0; s < seconds; s++) {
    let n = 0;
    for (let i = 0; i < perSecond; i++) {
      const d = l.consume('k', fromMs + s * 1000 + (i * 1000) / perSecond) as { allowed: boolean };
      if (d.allowed) n++;
    }
    admitted.push(n);
  }
  return admitted;
}

describe('warm-up coldness', () => {
  it('warms while in use, cools while unused, both over one period, clamped to [0, 1]', () => {
    expect(nextColdness(1, 0, 5_000, 5_000, 10_000)).toBeCloseTo(0.5); // busy 5 s
    expect(nextColdness(0.5, 0, 5_000, 0, 10_000)).toBeCloseTo(1); // idle 5 s
    expect(nextColdness(0.5, 0, 4_000, 1_000, 10_000)).toBeCloseTo(0.7); // busy 1 s, idle 3 s
    expect(nextColdness(0, 0, 1_000, 9_000, 10_000)).toBe(0);
    expect(warmFactor(1, warmUp)).toBe(0.25);
    expect(warmFactor(0, warmUp)).toBe(1);
  });
});

describe('TokenBucket with warm-up', () => {
  it('ramps from requests / coldFactor to requests over the period under full demand', () => {
    const b = new TokenBucket({ requests: 100, perMs: 1000, burst: 100, warmUp });
    const admitted = offer(b, 0, 14, 400);
    expect(admitted[0]).toBeLessThanOrEqual(60); // cold: a quarter of the rate and of the burst (25 + 25), warming a little
    expect(admitted[1]).toBeLessThan(45);
    expect(admitted[5]).toBeGreaterThan(50);
    expect(admitted[5]).toBeLessThan(85);
    for (const n of admitted.slice(11)) expect(n).toBeGreaterThanOrEqual(99);
    // Monotonic ramp (±1 for the grid).
    for (let i = 2; i < 11; i++) expect(admitted[i]!).toBeGreaterThanOrEqual(admitted[i - 1]! - 1);
  });

  it('a quiet spell of one period makes it cold again; a short one only a little', () => {
    const b = new TokenBucket({ requests: 100, perMs: 1000, burst: 100, warmUp });
    offer(b, 0, 15, 400);
    const afterShortPause = offer(b, 17_000, 1, 400)[0]!; // 2 s quiet
    expect(afterShortPause).toBeGreaterThan(70);
    const afterLongPause = offer(b, 40_000, 1, 400)[0]!; // 22 s quiet
    expect(afterLongPause).toBeLessThanOrEqual(60);
  });

  it('steady demand keeps it only as warm as that demand needs (in use half the time)', () => {
    const b = new TokenBucket({ requests: 100, perMs: 1000, burst: 100, warmUp });
    expect(offer(b, 0, 20, 20)).toEqual(Array(20).fill(20));
    const surge = offer(b, 20_000, 1, 400)[0]!;
    expect(surge).toBeGreaterThan(60); // warmer than cold (≈ 54)…
    expect(surge).toBeLessThan(120); // …far from warm (burst 100 + rate 100)
  });
});

describe('SlidingWindow with warm-up', () => {
  it('admits requests / coldFactor per window when cold and the full limit once warm', () => {
    const w = new SlidingWindow({ requests: 100, perMs: 1000, warmUp });
    const admitted = offer(w, 0, 14, 400);
    expect(admitted[0]).toBeLessThanOrEqual(35); // cold: 25 per window, warming a little
    expect(admitted[5]).toBeGreaterThan(45);
    expect(admitted[5]).toBeLessThan(85);
    for (const n of admitted.slice(11)) expect(n).toBeGreaterThanOrEqual(98);
    expect(offer(w, 40_000, 1, 400)[0]).toBeLessThanOrEqual(35); // cold again after a long quiet spell
  });
});

describe('priority reserve in the local limiters', () => {
  it('refuses a request that would eat into the reserve without taking its token', () => {
    const b = new TokenBucket({ requests: 10, perMs: 1000 });
    for (let i = 0; i < 7; i++) expect(b.consume('k', 0, 3).allowed).toBe(true);
    const refused = b.consume('k', 0, 3);
    expect(refused).toMatchObject({ allowed: false, reserved: true });
    for (let i = 0; i < 3; i++) expect(b.consume('k', 0).allowed).toBe(true); // the reserve is intact
    expect(b.consume('k', 0).reserved).toBeUndefined();
    const w = new SlidingWindow({ requests: 10, perMs: 1000 });
    for (let i = 0; i < 8; i++) w.consume('k', 0, 2);
    expect(w.consume('k', 0, 2)).toMatchObject({ allowed: false, reserved: true });
    expect(w.consume('k', 0).allowed).toBe(true);
  });
});
