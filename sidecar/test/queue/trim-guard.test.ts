import { describe, expect, it } from 'vitest';
import { decideTrim } from '../../src/queue/trim-guard.ts';
import { compareStreamIds, nextStreamId } from '../../src/queue/stream-id.ts';

describe('stream ids', () => {
  it('compare numerically, not lexically', () => {
    expect(compareStreamIds('9-0', '10-0')).toBe(-1);
    expect(compareStreamIds('10-2', '10-10')).toBe(-1);
    expect(compareStreamIds('5-5', '5-5')).toBe(0);
    expect(nextStreamId('7-3')).toBe('7-4');
  });
});

describe('decideTrim', () => {
  const base = { length: 10, maxLen: 5, retentionCutId: '6-0', oldestPendingId: undefined, lastDeliveredId: '10-0' };

  it('does nothing within retention', () => {
    expect(decideTrim({ ...base, length: 5 })).toEqual({ trim: false, held: 0 });
  });

  it('trims to the retention cut when everything below it is acknowledged', () => {
    expect(decideTrim(base)).toEqual({ trim: true, minId: '6-0', guarded: false });
  });

  it('never trims a pending entry: stops at the oldest pending', () => {
    expect(decideTrim({ ...base, oldestPendingId: '3-0' })).toEqual({ trim: true, minId: '3-0', guarded: true });
  });

  it('never trims entries no consumer has read yet', () => {
    expect(decideTrim({ ...base, lastDeliveredId: '2-0' })).toEqual({ trim: true, minId: '2-1', guarded: true });
  });

  it('holds the whole trim when the oldest entry is still owed', () => {
    expect(decideTrim({ ...base, lastDeliveredId: '0-0' })).toEqual({ trim: false, held: 5 });
  });

  it('pending entries above the cut do not hold it back', () => {
    expect(decideTrim({ ...base, oldestPendingId: '8-0' })).toEqual({ trim: true, minId: '6-0', guarded: false });
  });
});
