/**
 * Who leads a LeaderElection, as far as the operator can tell: a pure reducer of the previous
 * status and the sidecars' latest claims (leader-reports.ts), with time injected.
 *
 * - Only a claim from a pod the election selects counts (a pod's claim arrives on its own
 *   authenticated stream, so it can only speak for itself).
 * - A claim counts while its validUntil is in the future; the holder's lease is renewed by every
 *   renewal report, so a holder that went silent expires at the validUntil it last reported.
 * - Fencing tokens strictly increase from one leader to the next, so a claim whose token is not
 *   above the current holder's is stale (a delayed report of an old term) — unless it is the
 *   holder itself renewing the same term. With no holder, the last known token still rules out
 *   older terms.
 * - A pod's report is its own word: a claim's validUntil counts for at most the election's ttl from
 *   when the report arrived (a claim "valid until 2099" is not), and where the operator can read
 *   the lock nodes, a token above every fencing counter they hold was never issued: it is refused.
 *   Two pods claiming the same new token cannot both lead; neither is believed.
 * - Right after the operator (re)starts it has heard nobody yet: a holder recorded in status whose
 *   pod is still selected and has not reported yet is kept until `graceUntil`, so an operator
 *   failover does not flap the leader label.
 */
import type { ElectionClaim } from './leader-reports.ts';

export interface LeadershipState {
  /** The leader pod's name; undefined: no leader. */
  readonly holder: string | undefined;
  /** The holder's token; with no holder, the last leader's (never goes down). */
  readonly fencingToken: number | undefined;
  /** Leadership terms begun (each new holder or new token counts one). */
  readonly transitions: number;
  /** When leadership last changed: a new term began, or the holder was lost. */
  readonly lastTransitionTime: string | undefined;
}

export interface LeaderCandidate {
  /** Pod name (same namespace as the election). */
  readonly pod: string;
  /** Alive, with a sidecar, and matched by spec.selector. */
  readonly selected: boolean;
  /** Its latest claim about this election; undefined: it has not reported on it (since the operator started). */
  readonly claim: ElectionClaim | undefined;
}

export type IgnoredWhy = 'NotSelected' | 'StaleToken' | 'Expired' | 'NoToken' | 'UnknownToken' | 'DuplicateToken' | 'Unverified';

/**
 * What the lock nodes say about the election's fencing counter: the highest value on a majority of
 * them (every token ever issued is at most this), or that no majority answered.
 */
export type LockNodeView = { readonly state: 'ok'; readonly highestToken: number } | { readonly state: 'unreachable' };

export interface LeadershipInput {
  readonly previous: LeadershipState;
  readonly candidates: readonly LeaderCandidate[];
  /** Wall-clock ms. */
  readonly now: number;
  readonly nowIso: string;
  /** Until then, a previous holder that has not reported yet (operator just started) is kept. */
  readonly graceUntil: number;
  /** The election's lease ttl: no claim is valid longer than this after its report arrived. */
  readonly ttlMs: number;
  /** The lock nodes' counter; undefined when the operator has no lock nodes to read. */
  readonly lock?: LockNodeView | undefined;
}

export interface LeadershipPlan {
  readonly state: LeadershipState;
  /** The holder changed (pod or term): worth an Event and a label move. */
  readonly holderChanged: boolean;
  /** Leader claims that were not believed, and why. */
  readonly ignored: readonly { pod: string; why: IgnoredWhy }[];
  /** When to look again even if nothing is reported (the holder's expiry, the grace end). */
  readonly recheckAt: number | undefined;
}

export function planLeadership(input: LeadershipInput): LeadershipPlan {
  const { previous, now } = input;
  const ignored: { pod: string; why: IgnoredWhy }[] = [];
  let best: { pod: string; token: number; validUntil: number } | undefined;
  let tied: string | undefined;
  for (const c of input.candidates) {
    const claim = c.claim;
    if (!claim?.leader) continue;
    if (!c.selected) {
      ignored.push({ pod: c.pod, why: 'NotSelected' });
      continue;
    }
    if (claim.fencingToken === undefined) {
      ignored.push({ pod: c.pod, why: 'NoToken' });
      continue;
    }
    const validUntil = claim.validUntil === undefined ? undefined : Math.min(claim.validUntil, claim.receivedAt + input.ttlMs);
    if (validUntil === undefined || validUntil <= now) {
      ignored.push({ pod: c.pod, why: 'Expired' });
      continue;
    }
    const renewal = c.pod === previous.holder && claim.fencingToken === previous.fencingToken;
    if (!renewal && claim.fencingToken <= (previous.fencingToken ?? 0)) {
      ignored.push({ pod: c.pod, why: 'StaleToken' });
      continue;
    }
    // A renewal was checked when its term began; a new term is believed only if the nodes issued it.
    if (!renewal && input.lock?.state === 'unreachable') {
      ignored.push({ pod: c.pod, why: 'Unverified' });
      continue;
    }
    if (!renewal && input.lock?.state === 'ok' && claim.fencingToken > input.lock.highestToken) {
      ignored.push({ pod: c.pod, why: 'UnknownToken' });
      continue;
    }
    if (best && claim.fencingToken === best.token) {
      tied = c.pod;
      continue;
    }
    if (!best || claim.fencingToken > best.token) {
      best = { pod: c.pod, token: claim.fencingToken, validUntil };
      tied = undefined;
    }
  }
  if (best && tied !== undefined) {
    ignored.push({ pod: best.pod, why: 'DuplicateToken' }, { pod: tied, why: 'DuplicateToken' });
    best = undefined;
  }

  if (!best && previous.holder !== undefined && now < input.graceUntil) {
    const holder = input.candidates.find((c) => c.pod === previous.holder);
    if (holder?.selected && holder.claim === undefined) {
      return { state: previous, holderChanged: false, ignored, recheckAt: input.graceUntil };
    }
  }

  if (!best) {
    const state: LeadershipState = previous.holder === undefined
      ? previous
      : { ...previous, holder: undefined, lastTransitionTime: input.nowIso };
    return { state, holderChanged: previous.holder !== undefined, ignored, recheckAt: undefined };
  }
  const newTerm = best.pod !== previous.holder || best.token !== previous.fencingToken;
  const state: LeadershipState = newTerm
    ? {
      holder: best.pod,
      fencingToken: best.token,
      transitions: previous.transitions + 1,
      lastTransitionTime: input.nowIso,
    }
    : previous;
  return { state, holderChanged: newTerm, ignored, recheckAt: best.validUntil };
}
