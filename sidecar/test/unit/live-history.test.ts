import { describe, expect, it } from 'vitest';
import { histogramQuantile } from '../../src/admin/histogram-quantile.ts';
import { LiveHistory, type LiveReading } from '../../src/admin/live-history.ts';

const BOUNDS = [0.001, 0.01, 0.1, 1];

describe('histogramQuantile', () => {
  it('interpolates inside the bucket that holds the rank, as histogram_quantile does', () => {
    // 100 observations: 50 in (0, 1ms], 49 in (1ms, 10ms], 1 in (10ms, 100ms].
    expect(histogramQuantile(0.5, BOUNDS, [50, 49, 1, 0, 0])).toBeCloseTo(0.001);
    expect(histogramQuantile(0.25, BOUNDS, [50, 49, 1, 0, 0])).toBeCloseTo(0.0005);
    expect(histogramQuantile(0.99, BOUNDS, [50, 49, 1, 0, 0])).toBeCloseTo(0.01);
    expect(histogramQuantile(0.995, BOUNDS, [50, 49, 1, 0, 0])).toBeCloseTo(0.055);
  });

  it('answers the highest finite bound for a rank in +Inf, and null without observations', () => {
    expect(histogramQuantile(0.99, BOUNDS, [0, 0, 0, 0, 3])).toBe(1);
    expect(histogramQuantile(0.5, BOUNDS, [0, 0, 0, 0, 0])).toBeNull();
  });

  it('refuses a quantile outside [0, 1] and counts that do not fit the bounds', () => {
    expect(() => histogramQuantile(1.5, BOUNDS, [1, 0, 0, 0, 0])).toThrow(RangeError);
    expect(() => histogramQuantile(0.5, BOUNDS, [1, 0, 0, 0])).toThrow(/expected 5 bucket counts/);
  });
});

function reading(second: number, requests: Record<string, number>, counts: number[], gauges: LiveReading['gauges'] = {}): LiveReading {
  return { t: second * 1000, at: 1_700_000_000_000 + second * 1000, requests, latency: { bounds: BOUNDS, counts }, gauges };
}

describe('LiveHistory', () => {
  it('turns cumulative counters into rates per second and bucket deltas into p50/p99 of the interval', () => {
    const h = new LiveHistory({ capacity: 10 });
    h.record(reading(0, { allowed: 100 }, [100, 0, 0, 0, 0]));
    expect(h.size).toBe(0); // the first reading is only the baseline
    h.record(reading(1, { allowed: 120, rate_limited: 5 }, [100, 0, 20, 0, 0]));
    h.record(reading(3, { allowed: 160, rate_limited: 5 }, [100, 0, 20, 0, 0]));
    const c = h.columns();
    expect(c.at).toEqual([1_700_000_001_000, 1_700_000_003_000]);
    expect(c.windowMs).toBe(10_000);
    expect(c.requests).toEqual({ allowed: [20, 20], rate_limited: [5, 0] });
    // The second interval saw 20 calls between 10 and 100 ms; the third saw none.
    expect(c.latencyMs.p50[0]).toBeCloseTo(55);
    expect(c.latencyMs.p99[0]).toBeCloseTo(99.1);
    expect(c.latencyMs.p50[1]).toBeNull();
  });

  it('keeps gauges as read, null where a series did not exist yet', () => {
    const h = new LiveHistory({ capacity: 10 });
    h.record(reading(0, {}, [0, 0, 0, 0, 0]));
    h.record(reading(1, {}, [0, 0, 0, 0, 0], { circuits: { 'shop/api/backend': { state: 0 } } }));
    h.record(reading(2, {}, [0, 0, 0, 0, 0], { circuits: { 'shop/api/backend': { state: 1 } }, adaptiveLimits: { 'shop/api/backend': { limit: 40, inFlight: 12 } } }));
    expect(h.columns().gauges).toEqual({
      circuits: { 'shop/api/backend': { state: [0, 1] } },
      adaptiveLimits: { 'shop/api/backend': { limit: [null, 40], inFlight: [null, 12] } },
    });
  });

  it('holds at most `capacity` samples, dropping the oldest', () => {
    const h = new LiveHistory({ capacity: 3 });
    for (let s = 0; s <= 10; s++) h.record(reading(s, { allowed: s * 10 }, [s, 0, 0, 0, 0]));
    const c = h.columns();
    expect(h.size).toBe(3);
    expect(c.at).toEqual([8, 9, 10].map((s) => 1_700_000_000_000 + s * 1000));
    expect(c.requests.allowed).toEqual([10, 10, 10]);
  });

  it('reads a counter that went down as reset, not as a negative rate', () => {
    const h = new LiveHistory({ capacity: 5 });
    h.record(reading(0, { allowed: 500 }, [500, 0, 0, 0, 0]));
    h.record(reading(1, { allowed: 7 }, [7, 0, 0, 0, 0]));
    expect(h.columns().requests.allowed).toEqual([7]);
    expect(h.columns().latencyMs.p50[0]).toBeCloseTo(0.5);
  });

  it('refuses a capacity that cannot hold a line', () => {
    expect(() => new LiveHistory({ capacity: 1 })).toThrow(RangeError);
  });
});
