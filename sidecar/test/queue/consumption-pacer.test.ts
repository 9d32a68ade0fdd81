import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../lib/clock.ts';
import { ConsumptionPacer } from '../../src/queue/consumption-pacer.ts';

describe('ConsumptionPacer', () => {
  it('without a limit hands out whatever is asked', () => {
    const p = new ConsumptionPacer(undefined, new ManualClock());
    expect(p.take(1_000)).toBe(1_000);
    expect(p.waitMs()).toBe(0);
  });

  it('caps reads at requests per period, refilling with time', () => {
    const clock = new ManualClock();
    const p = new ConsumptionPacer({ requests: 10, perMs: 1_000 }, clock);
    expect(p.take(25)).toBe(10);
    expect(p.take(1)).toBe(0);
    expect(p.waitMs()).toBe(100);
    clock.advance(500);
    expect(p.take(25)).toBe(5);
  });

  it('takes back tokens a read did not use, up to the burst', () => {
    const clock = new ManualClock();
    const p = new ConsumptionPacer({ requests: 10, perMs: 1_000 }, clock);
    expect(p.take(10)).toBe(10);
    p.refund(7);
    expect(p.take(10)).toBe(7);
    p.refund(100);
    expect(p.take(100)).toBe(10);
  });

  it('refuses a nonsensical limit', () => {
    expect(() => new ConsumptionPacer({ requests: 0, perMs: 1_000 }, new ManualClock())).toThrow(RangeError);
  });
});
