import { describe, expect, it } from 'vitest';
import { EventThrottle } from '../src/event-throttle.ts';

describe('EventThrottle', () => {
  it('lets a burst through, then one per interval, and counts what it held back', () => {
    const t = new EventThrottle({ burst: 2, everyMs: 1_000 });
    expect(t.take('a', 0)).toEqual({ allowed: true, suppressed: 0 });
    expect(t.take('a', 0)).toEqual({ allowed: true, suppressed: 0 });
    expect(t.take('a', 10)).toEqual({ allowed: false, suppressed: 1 });
    expect(t.take('a', 20)).toEqual({ allowed: false, suppressed: 2 });
    expect(t.take('a', 1_010)).toEqual({ allowed: true, suppressed: 2 });
    expect(t.take('a', 1_020)).toEqual({ allowed: false, suppressed: 1 });
  });

  it('keeps keys apart: one flapping policy does not silence another', () => {
    const t = new EventThrottle({ burst: 1, everyMs: 60_000 });
    expect(t.take('a', 0).allowed).toBe(true);
    expect(t.take('a', 0).allowed).toBe(false);
    expect(t.take('b', 0).allowed).toBe(true);
  });

  it('holds a bounded number of keys, forgetting the oldest', () => {
    const t = new EventThrottle({ burst: 1, everyMs: 60_000, maxKeys: 3 });
    for (const k of ['a', 'b', 'c', 'd']) t.take(k, 0);
    expect(t.size).toBe(3);
    expect(t.take('a', 0).allowed).toBe(true); // forgotten, so a fresh bucket
  });

  it('refuses nonsense settings', () => {
    expect(() => new EventThrottle({ burst: 0, everyMs: 1 })).toThrow(RangeError);
    expect(() => new EventThrottle({ burst: 1, everyMs: 0 })).toThrow(RangeError);
  });
});
