import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../lib/clock.ts';
import { driftMs, quorum, stepDownAt, tally, validUntil } from '../../src/leader/validity.ts';
import { decideFencingToken, nextFencingToken } from '../../src/leader/fencing-token.ts';

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

describe('fencing tokens with a proposal taken in the acquire round', () => {
  /**
   * A model of the nodes' counters under the protocol of fencing-token.ts: a holder proposes P,
   * wins the nodes of `won` (SET NX succeeded: the previous holder's lock is gone there), each of
   * which raises its counter to P atomically; the token is decided from the counters read, and a
   * write-back round reaches the nodes of `fenced` (a majority of the won ones) when it is needed.
   */
  function acquire(counters: number[], proposed: number, won: number[], fenced: number[], q: number): number {
    const read = won.map((i) => counters[i] as number);
    for (const i of won) counters[i] = Math.max(counters[i] as number, proposed);
    const d = decideFencingToken(proposed, read, q);
    if (d.writeBack) for (const i of fenced) counters[i] = Math.max(counters[i] as number, d.token);
    return d.token;
  }

  it('keeps the proposal when a majority had lower counters, else asks for a write-back above all', () => {
    expect(decideFencingToken(4, [3, 3, 1], 2)).toEqual({ token: 4, writeBack: false });
    expect(decideFencingToken(4, [3, 5], 2)).toEqual({ token: 6, writeBack: true });
    expect(decideFencingToken(1, [7, 7, 7], 2)).toEqual({ token: 8, writeBack: true });
  });

  it('tokens strictly increase over every sequence of majorities and proposals (3 nodes, exhaustive; 5 nodes, sampled)', () => {
    for (const n of [3, 5]) {
      const q = quorum(n);
      const majorities = subsets(n).filter((s) => s.length >= q);
      // A holder: which majority it won, which majority of those the write-back reached, its proposal.
      const moves: [number[], number[], number][] = [];
      for (const won of majorities) for (const fenced of subsets(n).filter((s) => s.length >= q && s.every((i) => won.includes(i)))) for (const p of [1, 2, 3, 5, 8]) moves.push([won, fenced, p]);
      const sequences = n === 3 ? product(moves, 3) : Array.from({ length: 20_000 }, (_, k) => [0, 1, 2].map((j) => moves[(k * 7919 + j * 104_729) % moves.length] as [number[], number[], number]));
      for (const seq of sequences) {
        const counters = Array.from({ length: n }, () => 0);
        let last = 0;
        for (const [won, fenced, p] of seq) {
          const token = acquire(counters, p, won, fenced, q);
          expect(token).toBeGreaterThan(last);
          last = token;
        }
      }
    }
  });
});

function product<T>(items: T[], k: number): T[][] {
  let out: T[][] = [[]];
  for (let i = 0; i < k; i++) out = out.flatMap((prefix) => items.map((x) => [...prefix, x]));
  return out;
}

function subsets(n: number): number[][] {
  const out: number[][] = [];
  for (let mask = 1; mask < 1 << n; mask++) out.push(Array.from({ length: n }, (_, i) => i).filter((i) => mask & (1 << i)));
  return out;
}
