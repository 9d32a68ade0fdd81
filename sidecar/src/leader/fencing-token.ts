/**
 * Fencing tokens from a quorum counter.
 *
 * Every lock node keeps, per resource, the highest token it has seen (`sluice:fence:{resource}`,
 * no expiry). Acquiring is two rounds:
 *   1. on every node, atomically: SET lock NX PX ttl, and if that succeeded, read the node's counter;
 *   2. token = max(counters read on the nodes won) + 1, written back — only on nodes where this
 *      holder's lock value is still present, atomically checked (FENCE script) — to a majority.
 * The holder becomes leader only if round 2 reached a majority.
 *
 * Why tokens strictly increase from one holder to the next, even when their majorities differ: any
 * two majorities share a node X. The earlier holder A wrote its token to X while its lock was still
 * on X (the script checks that). The later holder B's SET NX could only succeed on X after A's lock
 * was gone from X, and read X's counter in the same atomic step — so B read at least A's token, and
 * took a larger one. This needs no clock assumption; it needs only that X kept its counter (a node
 * that loses its data can hand out an old counter — see docs/leader-election.md).
 */
export type FencingToken = number;

export function nextFencingToken(counters: readonly number[]): FencingToken {
  let max = 0;
  for (const c of counters) if (c > max) max = c;
  if (max >= Number.MAX_SAFE_INTEGER) throw new RangeError('fencing token space exhausted');
  return max + 1;
}
