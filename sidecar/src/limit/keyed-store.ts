/**
 * Per-partition limiter state, bounded. A Map keeps insertion order, so re-inserting on use makes
 * it an LRU: the oldest entry is the least recently used. Entries whose state has returned to
 * "fresh" (`isIdle`) are dropped as new keys arrive, and past `maxKeys` the least recently used
 * entry goes. Evicting a fresh entry changes nothing; evicting a non-fresh one under key floods
 * forgives that one partition its history — the price of bounded memory, and the right one.
 */
export class KeyedStore<S> {
  private readonly map = new Map<string, S>();
  private readonly maxKeys: number;
  private readonly create: () => S;
  private readonly isIdle: (state: S, now: number) => boolean;
  evictions = 0;

  constructor(opts: { maxKeys: number; create: () => S; isIdle: (state: S, now: number) => boolean }) {
    this.maxKeys = opts.maxKeys;
    this.create = opts.create;
    this.isIdle = opts.isIdle;
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string, now: number): S {
    const map = this.map;
    let state = map.get(key);
    if (state !== undefined) {
      // Refresh recency only for keyed partitions; the single "none" key never needs it.
      if (map.size > 1) {
        map.delete(key);
        map.set(key, state);
      }
      return state;
    }
    this.sweep(now);
    state = this.create();
    map.set(key, state);
    return state;
  }

  /** Looks at the two oldest entries per new key (amortised O(1), no timers), then applies the cap. */
  private sweep(now: number): void {
    let looked = 0;
    for (const [k, s] of this.map) {
      if (looked++ >= 2) break;
      if (this.isIdle(s, now)) {
        this.map.delete(k);
        this.evictions++;
      }
    }
    while (this.map.size >= this.maxKeys) {
      const oldest = this.map.keys().next().value as string;
      this.map.delete(oldest);
      this.evictions++;
    }
  }
}
