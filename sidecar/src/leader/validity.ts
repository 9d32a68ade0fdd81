/**
 * RedLock's arithmetic, pure. A lock is held when a majority of the independent nodes accepted it,
 * and only for as long as the slowest of those nodes can still be trusted to keep it:
 *
 *     validity = ttl − elapsed − drift
 *
 * where `elapsed` is the time the acquire (or extend) took, measured on this process's monotonic
 * clock from before the first request was sent, and `drift` allows for the lock nodes' clocks
 * running at a different rate from ours (1 % of the ttl, plus 2 ms for timer granularity — the
 * figures of the RedLock description).
 */
export const DRIFT_FACTOR = 0.01;

export function quorum(nodes: number): number {
  if (!Number.isInteger(nodes) || nodes < 1) throw new RangeError('quorum: need at least one lock node');
  return Math.floor(nodes / 2) + 1;
}

export function driftMs(ttlMs: number, factor = DRIFT_FACTOR): number {
  return Math.ceil(ttlMs * factor) + 2;
}

/**
 * The monotonic instant until which a lock acquired or extended by a round that *started* at
 * `startedAt` is valid. Counting from the start, not the end, is what makes `elapsed` part of it.
 */
export function validUntil(startedAt: number, ttlMs: number, factor = DRIFT_FACTOR): number {
  return startedAt + ttlMs - driftMs(ttlMs, factor);
}

/**
 * When a leader whose renewals keep failing stops calling itself leader: a margin before the
 * validity ends, so that the app is told (and stops acting) while the lock still holds, even if
 * this timer fires a little late. 2 % of the ttl, at least 20 ms.
 */
export function stepDownAt(validUntilMs: number, ttlMs: number): number {
  return validUntilMs - Math.max(20, Math.ceil(ttlMs * 0.02));
}

/** Majority arithmetic over per-node answers: true = accepted, false = refused, undefined = no answer. */
export function tally(answers: readonly (boolean | undefined)[]): { accepted: number; refused: number; quorum: number; won: boolean; lostForSure: boolean } {
  let accepted = 0;
  let refused = 0;
  for (const a of answers) {
    if (a === true) accepted++;
    else if (a === false) refused++;
  }
  const q = quorum(answers.length);
  // Once more nodes refused than a majority could spare, no retry of this round can win.
  return { accepted, refused, quorum: q, won: accepted >= q, lostForSure: refused > answers.length - q };
}
