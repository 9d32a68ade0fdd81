/**
 * Fencing tokens from a quorum counter.
 *
 * Every lock node keeps, per resource, the highest token it has seen (`sluice:fence:{resource}`,
 * no expiry). The acquirer proposes a token P — one more than the highest counter it has seen for
 * the resource — and acquiring is one round, plus a second one only when P was too low:
 *   1. on every node, atomically (ACQUIRE): SET lock NX PX ttl; if that succeeded, read the node's
 *      counter c and raise it to P if c < P.
 *   2. if the nodes that were won *and* had c < P form a majority, the token is P: done.
 *      Otherwise, if a majority was won at all, token = max(P, the c read on the won nodes) + 1,
 *      written back (FENCE: only where this holder's lock value is still present, atomically
 *      checked) to a majority of the won nodes — the holder leads only if that reached a majority.
 *
 * Why tokens strictly increase from one holder to the next, even when their majorities differ:
 * call S the majority a holder's token was decided on (the won nodes with c < P in step 2's first
 * case, the nodes FENCE reached in its second). Any two majorities share a node X. The earlier
 * holder A wrote its token to X while its lock was on X (both scripts check that, atomically). The
 * later holder B's SET NX could only succeed on X after A's lock was gone from X, and read X's
 * counter c ≥ A's token in the same atomic step. B's token is either P with c < P, or larger than
 * every c B read on the nodes it won: larger than A's token either way. This needs no clock
 * assumption; it needs only that X kept its counter (a node that loses its data can hand out an
 * old counter — see docs/leader-election.md). Raising counters on nodes outside S, or in a round
 * that failed, only makes later tokens larger.
 */
export type FencingToken = number;

export function nextFencingToken(counters: readonly number[]): FencingToken {
  let max = 0;
  for (const c of counters) if (c > max) max = c;
  if (max >= Number.MAX_SAFE_INTEGER) throw new RangeError('fencing token space exhausted');
  return max + 1;
}

/**
 * Step 2 of an acquisition, pure: given the proposal and the counters read (before the proposal
 * was applied) on the nodes that were won, either the proposal stands (a majority of them had a
 * lower counter), or a write-back round is needed with one above everything seen.
 */
export function decideFencingToken(proposed: FencingToken, wonCounters: readonly number[], quorum: number): { token: FencingToken; writeBack: boolean } {
  let fresh = 0;
  for (const c of wonCounters) if (c < proposed) fresh++;
  if (fresh >= quorum) return { token: proposed, writeBack: false };
  return { token: nextFencingToken([...wonCounters, proposed]), writeBack: true };
}
