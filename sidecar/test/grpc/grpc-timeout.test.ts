import { describe, expect, it } from 'vitest';
import { callDeadline, formatGrpcTimeout, parseGrpcTimeout } from '../../src/grpc/grpc-timeout.ts';

describe('grpc-timeout', () => {
  it.each([
    ['1H', 3_600_000], ['2M', 120_000], ['3S', 3_000], ['250m', 250], ['1500u', 1.5], ['2000000n', 2], ['99999999m', 99_999_999], ['0m', 0],
  ])('parses %s as %d ms', (v, ms) => expect(parseGrpcTimeout(v)).toBe(ms));

  it.each(['', '10', 'm', '1.5S', '-1S', '123456789S', '10s', '10 S', '1S '])('refuses %j', (v) => expect(parseGrpcTimeout(v)).toBeUndefined());

  it.each([
    [0.5, '500u'], [250, '250000u'], [99_999, '99999000u'], [100_000, '100000m'], [2.7e8, '270000S'], [1.2e11, '2000000M'], [-5, '0n'], [0, '0n'],
  ])('formats %d ms as %s, at most 8 digits, never later than asked', (ms, v) => {
    expect(formatGrpcTimeout(ms)).toBe(v);
    expect(parseGrpcTimeout(formatGrpcTimeout(ms))! <= Math.max(0, ms)).toBe(true);
  });

  it('round-trips within the unit chosen', () => {
    for (const ms of [1, 17.25, 999, 12_345, 3_600_000]) expect(parseGrpcTimeout(formatGrpcTimeout(ms))).toBeCloseTo(ms, 2);
  });

  it('the call deadline is the tighter of the client deadline and the breaker timeout', () => {
    expect(callDeadline(undefined, undefined)).toBeUndefined();
    expect(callDeadline(500, undefined)).toEqual({ ms: 500, bound: 'client' });
    expect(callDeadline(undefined, 2_000)).toEqual({ ms: 2_000, bound: 'breaker' });
    expect(callDeadline(500, 2_000)).toEqual({ ms: 500, bound: 'client' });
    expect(callDeadline(5_000, 2_000)).toEqual({ ms: 2_000, bound: 'breaker' });
    expect(callDeadline(2_000, 2_000)).toEqual({ ms: 2_000, bound: 'client' });
  });
});
