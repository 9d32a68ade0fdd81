import { compareStreamIds, nextStreamId } from './stream-id.ts';

/** What the trimmer read from Redis about one stream and its group. */
export interface TrimObservation {
  readonly length: number;
  readonly maxLen: number;
  /**
   * The id of the first entry that retention alone would keep: the (length − maxLen + 1)-th
   * oldest entry. Undefined when the stream is within maxLen.
   */
  readonly retentionCutId: string | undefined;
  /** The oldest entry delivered but not yet acknowledged (head of the group's PEL). */
  readonly oldestPendingId: string | undefined;
  /** The group's last-delivered-id: entries after it have not been read by anyone yet. */
  readonly lastDeliveredId: string;
}

export type TrimDecision =
  | { readonly trim: false; readonly held: number }
  | { readonly trim: true; readonly minId: string; readonly guarded: boolean };

/**
 * `retention.maxLen` must never silently delete work: an entry that is pending (delivered, not
 * acked) or not yet delivered at all is still a task, not history. So the trim point is the lower
 * of the retention cut and the first entry still owed to someone; `XTRIM MINID` then evicts only
 * entries strictly below it. When the guard holds the trim back, `held` says by how many entries
 * the stream is over its retention (reported, so an operator sees a stuck consumer).
 *
 * Safe without a transaction: between this read and the XTRIM, the floor can only move up (acks)
 * and new entries arrive with larger ids, so nothing below the computed floor becomes owed.
 */
export function decideTrim(o: TrimObservation): TrimDecision {
  if (o.length <= o.maxLen || o.retentionCutId === undefined) return { trim: false, held: 0 };
  let floor = nextStreamId(o.lastDeliveredId);
  if (o.oldestPendingId !== undefined && compareStreamIds(o.oldestPendingId, floor) < 0) floor = o.oldestPendingId;
  if (compareStreamIds(o.retentionCutId, floor) <= 0) return { trim: true, minId: o.retentionCutId, guarded: false };
  // Everything below the floor is acknowledged history; trim that much and keep the rest.
  if (compareStreamIds(floor, '0-1') <= 0) return { trim: false, held: o.length - o.maxLen };
  return { trim: true, minId: floor, guarded: true };
}
