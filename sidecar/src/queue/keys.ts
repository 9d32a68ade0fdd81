/**
 * Redis keys a queue uses besides its stream. Delays and backoff live here (not in sidecar memory)
 * so they survive a sidecar restart; the `{stream}` hash tag keeps them together on one slot.
 */
export interface QueueKeys {
  readonly stream: string;
  /** Sorted set: task id scored by the Redis time (ms) it becomes due. */
  readonly delayed: string;
  /** Hash: task id → the packed entry fields it will be appended with. */
  readonly delayedTasks: string;
  /** Counter that numbers delayed tasks (they need an id before they have an entry). */
  readonly seq: string;
  /** Prefix of `Idempotency-Key` records: key → task id, expiring after the window. */
  readonly idempotencyPrefix: string;
}

export function queueKeys(stream: string): QueueKeys {
  const base = `sluice:tq:{${stream}}`;
  return {
    stream,
    delayed: `${base}:delayed`,
    delayedTasks: `${base}:delayed:tasks`,
    seq: `${base}:seq`,
    idempotencyPrefix: `${base}:idem:`,
  };
}
