import { describe, expect, it } from 'vitest';
import { boundedPartitionKey, MAX_PARTITION_KEY_CHARS } from '../../src/limit/bounded-key.ts';
import { KeyedStore } from '../../src/limit/keyed-store.ts';
import { SlidingWindow } from '../../src/limit/sliding-window.ts';
import { TokenBucket } from '../../src/limit/token-bucket.ts';

describe('keyed limiter state is bounded by bytes and keeps the partitions being limited', () => {
  it('a flood of new keys does not evict a partition that is being limited right now', () => {
    for (const limiter of [new TokenBucket({ requests: 1, perMs: 60_000, maxKeys: 100 }), new SlidingWindow({ requests: 1, perMs: 60_000, maxKeys: 100 })]) {
      expect(limiter.consume('abuser', 0).allowed).toBe(true);
      expect(limiter.consume('abuser', 1).allowed).toBe(false);
      // Ten times the store's capacity in fresh keys, all within the window.
      for (let i = 0; i < 1_000; i++) limiter.consume(`spray-${i}`, 2 + i / 1000);
      expect(limiter.keys).toBeLessThanOrEqual(100);
      expect(limiter.consume('abuser', 5).allowed).toBe(false);
    }
  });

  it('bounds the bytes held, whatever the key sizes', () => {
    const s = new KeyedStore<{ n: number }>({ maxKeys: 1_000_000, maxBytes: 64 * 1024, create: () => ({ n: 0 }), isIdle: () => false });
    for (let i = 0; i < 1_000; i++) s.get(`${i}-${'k'.repeat(100)}`, 0);
    expect(s.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(s.size).toBeGreaterThan(100);
  });

  it('protected entries yield to probation first and hold at most half of the store', () => {
    const s = new KeyedStore<{ n: number }>({ maxKeys: 4, create: () => ({ n: 0 }), isIdle: () => false });
    s.get('a', 0);
    s.protect('a');
    s.get('b', 0);
    s.protect('b');
    s.get('c', 0);
    s.protect('c'); // over half: a (least recently used) drops to probation
    for (const k of ['x', 'y', 'z']) s.get(k, 0);
    expect(s.size).toBeLessThanOrEqual(4);
    const before = s.evictions;
    s.get('b', 0);
    s.get('c', 0);
    expect(s.evictions).toBe(before); // b and c are still there
  });

  it('long partition keys are stored as a hash of fixed size; short ones as they are', () => {
    expect(boundedPartitionKey('/api/x')).toBe('/api/x');
    const long = `/p/${'a'.repeat(12_000)}`;
    const h = boundedPartitionKey(long);
    expect(h.length).toBeLessThanOrEqual(MAX_PARTITION_KEY_CHARS);
    expect(boundedPartitionKey(long)).toBe(h);
    expect(boundedPartitionKey(`${long}b`)).not.toBe(h);
  });
});
