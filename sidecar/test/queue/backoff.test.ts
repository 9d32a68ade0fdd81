import { describe, expect, it } from 'vitest';
import { backoffDelayMs, backoffFloorMs, JITTER_FRACTION } from '../../src/queue/backoff.ts';

const retry = { initialMs: 1_000, maxMs: 60_000, multiplier: 2 };

describe('backoff', () => {
  it.each([
    [1, 1_000],
    [2, 2_000],
    [3, 4_000],
    [6, 32_000],
    [7, 60_000],
    [30, 60_000],
  ])('after attempt %i fails, the floor is %i ms', (attempt, floor) => {
    expect(backoffFloorMs(attempt, retry)).toBe(floor);
  });

  it('never schedules below the floor and adds at most 10% jitter', () => {
    for (const r of [0, 0.5, 0.999999]) {
      const d = backoffDelayMs(3, retry, () => r);
      expect(d).toBeGreaterThanOrEqual(4_000);
      expect(d).toBeLessThanOrEqual(4_000 * (1 + JITTER_FRACTION));
    }
  });

  it('refuses attempt numbers below 1', () => {
    expect(() => backoffFloorMs(0, retry)).toThrow(RangeError);
  });
});
