/**
 * Per-partition limiter state, bounded by count and by bytes, as a segmented LRU (SLRU / 2Q).
 *
 * New partitions enter the probation segment. A partition the limiter has just refused
 * (`protect`) moves to the protected segment: it is being limited right now, and forgetting it
 * would hand its client a fresh quota. When the store is full, room is made from probation first
 * — idle or admitted partitions, least recently used first — so a flood of new keys (a client
 * spraying distinct paths or header values) churns probation and cannot evict the partitions it
 * is being limited in. Protected holds at most half the budget; its least recently used entries
 * drop back to probation.
 *
 * Each segment is a Map (insertion order; re-inserting on use keeps it an LRU). Entries whose
 * state has returned to "fresh" (`isIdle`) are dropped as new keys arrive. Memory is counted as
 * an estimate per entry plus the key's characters; keys are capped by the caller
 * (`boundedPartitionKey`), so a budget in bytes is a budget in entries too.
 */
export class KeyedStore<S> {
  private readonly probation = new Map<string, S>();
  private readonly protectedSeg = new Map<string, S>();
  private readonly maxKeys: number;
  private readonly maxBytes: number;
  private readonly create: () => S;
  private readonly isIdle: (state: S, now: number) => boolean;
  private usedBytes = 0;
  private protectedBytes = 0;
  evictions = 0;

  constructor(opts: { maxKeys: number; maxBytes?: number; create: () => S; isIdle: (state: S, now: number) => boolean }) {
    if (!(opts.maxKeys >= 2)) throw new RangeError('KeyedStore: maxKeys must be ≥ 2');
    this.maxKeys = opts.maxKeys;
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
    this.create = opts.create;
    this.isIdle = opts.isIdle;
  }

  get size(): number {
    return this.probation.size + this.protectedSeg.size;
  }

  /** Estimated bytes held by the entries (what maxBytes bounds). */
  get bytes(): number {
    return this.usedBytes;
  }

  get(key: string, now: number): S {
    const probation = this.probation;
    let state = probation.get(key);
    if (state !== undefined) {
      // Refresh recency only for keyed partitions; the single "none" key never needs it.
      if (probation.size > 1) {
        probation.delete(key);
        probation.set(key, state);
      }
      return state;
    }
    const prot = this.protectedSeg;
    state = prot.get(key);
    if (state !== undefined) {
      prot.delete(key);
      prot.set(key, state);
      return state;
    }
    const cost = entryBytes(key);
    this.sweep(now, cost);
    state = this.create();
    probation.set(key, state);
    this.usedBytes += cost;
    return state;
  }

  /** The limiter refused this partition: keep it through floods of new keys. */
  protect(key: string): void {
    const state = this.probation.get(key);
    if (state === undefined) return; // already protected, or never stored
    this.probation.delete(key);
    this.protectedSeg.set(key, state);
    const cost = entryBytes(key);
    this.protectedBytes += cost;
    // Protected may hold half the budget; past it, its least recently used drop to probation.
    while (this.protectedSeg.size > this.maxKeys / 2 || this.protectedBytes > this.maxBytes / 2) {
      const [k, s] = this.protectedSeg.entries().next().value as [string, S];
      this.protectedSeg.delete(k);
      this.protectedBytes -= entryBytes(k);
      this.probation.set(k, s);
    }
  }

  /**
   * Looks at the two oldest entries of each segment per new key (amortised O(1), no timers),
   * then makes room for `incoming` bytes: probation's least recently used first.
   */
  private sweep(now: number, incoming: number): void {
    this.dropIdle(this.probation, now, false);
    this.dropIdle(this.protectedSeg, now, true);
    while (this.size >= this.maxKeys || this.usedBytes + incoming > this.maxBytes) {
      if (this.probation.size > 0) this.evictOldest(this.probation, false);
      else if (this.protectedSeg.size > 0) this.evictOldest(this.protectedSeg, true);
      else break;
    }
  }

  private dropIdle(segment: Map<string, S>, now: number, isProtected: boolean): void {
    let looked = 0;
    for (const [k, s] of segment) {
      if (looked++ >= 2) break;
      if (this.isIdle(s, now)) this.remove(segment, k, isProtected);
    }
  }

  private evictOldest(segment: Map<string, S>, isProtected: boolean): void {
    this.remove(segment, segment.keys().next().value as string, isProtected);
  }

  private remove(segment: Map<string, S>, key: string, isProtected: boolean): void {
    segment.delete(key);
    const cost = entryBytes(key);
    this.usedBytes -= cost;
    if (isProtected) this.protectedBytes -= cost;
    this.evictions++;
  }
}

/** Per-store budget: 100 000 partitions with keys of ~40 characters fit. */
const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;

/** A Map entry, its key string's header and a small state object: an estimate, generous. */
const ENTRY_OVERHEAD_BYTES = 120;

function entryBytes(key: string): number {
  return ENTRY_OVERHEAD_BYTES + 2 * key.length;
}
