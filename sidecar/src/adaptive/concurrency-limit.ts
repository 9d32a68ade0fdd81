/**
 * A concurrency limit that follows what the calls it admits measure. Pure: the caller reports
 * each finished call with the injected clock's `now`, and reads `limit` when admitting.
 */
export interface ConcurrencyLimit {
  /** Calls that may be in flight now. */
  readonly limit: number;
  /** The no-load latency the limit is judged against (ms); undefined until measured. */
  readonly minRttMs: number | undefined;
  /**
   * One finished call. `rttMs`: from admission to the end of the answer. `startedAt`: when it was
   * admitted. `overloaded`: the app answered "too busy" (429, 503, RESOURCE_EXHAUSTED,
   * UNAVAILABLE) or the call timed out.
   */
  onSample(now: number, rttMs: number, startedAt: number, overloaded: boolean): void;
}

/** The p-th percentile (0 < p ≤ 1) of `values`, which it sorts in place. */
export function percentile(values: number[], p: number): number {
  values.sort((a, b) => a - b);
  return values[Math.min(values.length - 1, Math.max(0, Math.ceil(p * values.length) - 1))] as number;
}
