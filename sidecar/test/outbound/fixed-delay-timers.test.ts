import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FixedDelayTimers, disarm } from '../../src/outbound/fixed-delay-timers.ts';

describe('FixedDelayTimers: one timer for many expiries of one delay', () => {
  let now = 0;
  const clock = { now: () => now, wallNow: () => now };
  const advance = (ms: number) => {
    for (let i = 0; i < ms; i++) {
      now++;
      vi.advanceTimersByTime(1);
    }
  };
  beforeEach(() => {
    vi.useFakeTimers();
    now = 0;
  });
  afterEach(() => vi.useRealTimers());

  it('fires each armed target once, in order, at its own time; disarmed ones never', () => {
    const fired: string[] = [];
    const timers = new FixedDelayTimers<string>(100, clock, (t) => fired.push(`${t}@${now}`));
    timers.arm('a');
    advance(30);
    const b = timers.arm('b');
    advance(10);
    timers.arm('c');
    expect(vi.getTimerCount()).toBe(1);
    disarm(b);
    expect(timers.pending).toBe(2);
    advance(60);
    expect(fired).toEqual(['a@100']);
    advance(39);
    expect(fired).toEqual(['a@100']);
    advance(1);
    expect(fired).toEqual(['a@100', 'c@140']);
    expect(timers.pending).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    disarm(b); // a no-op after the fact
  });

  it('an expiry that arms another schedules it with the same single timer', () => {
    const fired: number[] = [];
    const timers: FixedDelayTimers<number> = new FixedDelayTimers<number>(50, clock, (n) => {
      fired.push(now);
      if (n < 3) timers.arm(n + 1);
    });
    timers.arm(1);
    advance(50);
    expect(vi.getTimerCount()).toBe(1);
    advance(100);
    expect(fired).toEqual([50, 100, 150]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('refuses a negative delay', () => {
    expect(() => new FixedDelayTimers(-1, clock, () => {})).toThrow(RangeError);
  });
});
