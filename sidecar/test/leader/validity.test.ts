import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../lib/clock.ts';
import { driftMs, quorum, stepDownAt, tally, validUntil } from '../../src/leader/validity.ts';
import { nextFencingToken } from '../../src/leader/fencing-token.ts';

describe('RedLock validity arithmetic', () => {
  it('needs a strict majority', () => {
    expect([1, 2, 3, 4, 5].map(quorum)).toEqual([1, 2, 2, 3, 3]);
    expect(() => quorum(0)).toThrow(RangeError);
  });

  it('validity = ttl − elapsed − drift, counted from the start of the round', () => {
    const clock = new ManualClock(5_000);
    const started = clock.now();
    clock.advance(40); // the acquire round took 40 ms
    const until = validUntil(started, 10_000);
    expect(driftMs(10_000)).toBe(102);
    expect(until - clock.now()).toBe(10_000 - 40 - 102);
  });

  it('steps down a margin before validity ends: 2 % of the ttl, at least 20 ms', () => {
    expect(stepDownAt(10_000, 10_000)).toBe(9_800);
    expect(stepDownAt(1_000, 500)).toBe(980);
  });

  it('tallies node answers into won / lost for sure / undecided', () => {
    expect(tally([true, true, undefined])).toMatchObject({ won: true, lostForSure: false });
    expect(tally([true, undefined, undefined])).toMatchObject({ won: false, lostForSure: false });
    expect(tally([false, false, true])).toMatchObject({ won: false, lostForSure: true });
    expect(tally([false, undefined, true, true, undefined])).toMatchObject({ won: false, lostForSure: false });
  });
});

describe('fencing tokens from a quorum counter', () => {
  it('takes one more than the highest counter read', () => {
    expect(nextFencingToken([])).toBe(1);
    expect(nextFencingToken([3, 7, 5])).toBe(8);
  });

  it('a later holder reading any majority of a counter written to a majority gets a larger token', () => {
    // Exhaustive over 3 and 5 nodes: every majority written (W) and every majority read later (R).
    for (const n of [3, 5]) {
      const majorities = subsets(n).filter((s) => s.length >= quorum(n));
      for (const w of majorities) {
        for (const r of majorities) {
          const counters = Array.from({ length: n }, () => 0);
          const a = nextFencingToken(counters);
          for (const i of w) counters[i] = a;
          const b = nextFencingToken(r.map((i) => counters[i] as number));
          expect(b).toBeGreaterThan(a);
        }
      }
    }
  });
});

function subsets(n: number): number[][] {
  const out: number[][] = [];
  for (let mask = 1; mask < 1 << n; mask++) out.push(Array.from({ length: n }, (_, i) => i).filter((i) => mask & (1 << i)));
  return out;
}
