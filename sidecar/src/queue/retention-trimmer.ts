import type { Redis } from 'ioredis';
import type { TaskQueuePlan } from '../../../lib/policy/index.ts';
import { queueKeys } from '../../../lib/redis/key-layout.ts';
import { decideTrim } from './trim-guard.ts';

/** At most this many entries are evicted per pass, so one pass never blocks Redis for long. */
export const MAX_TRIM_PER_PASS = 5_000;

export interface TrimResult {
  readonly trimmed: number;
  /** Entries over maxLen kept because they are still owed to someone. */
  readonly held: number;
}

/**
 * Applies `retention.maxLen` through the trim guard (trim-guard.ts): reads the stream's length,
 * the head of the group's PEL and its last-delivered-id, then evicts with `XTRIM MINID` only
 * acknowledged history. Consumers run it periodically; producers do not, because only entries a
 * consumer has acknowledged are ever trimmable.
 */
export async function trimRetention(client: Redis, plan: TaskQueuePlan): Promise<TrimResult> {
  const maxLen = plan.maxLen;
  if (maxLen === undefined) return { trimmed: 0, held: 0 };
  const stream = queueKeys(plan).stream;
  const length = await client.xlen(stream);
  if (length <= maxLen) return { trimmed: 0, held: 0 };
  const excess = Math.min(length - maxLen, MAX_TRIM_PER_PASS);
  const p = client.pipeline();
  p.call('XRANGE', stream, '-', '+', 'COUNT', excess + 1);
  p.call('XPENDING', stream, plan.group);
  p.call('XINFO', 'GROUPS', stream);
  const [range, pending, groups] = ((await p.exec()) ?? []).map(([err, v]) => {
    if (err) throw err;
    return v;
  }) as [[string, unknown][], [number, string | null, string | null, unknown], unknown[][]];
  const group = groups.find((g) => g[1] === plan.group);
  // Without the group nobody has acknowledged anything: every entry is still owed.
  if (!group) return { trimmed: 0, held: length - maxLen };
  const lastDeliveredId = String(group[group.indexOf('last-delivered-id') + 1]);
  const decision = decideTrim({
    length,
    maxLen: length - excess,
    retentionCutId: range.length === excess + 1 ? (range[excess] as [string, unknown])[0] : undefined,
    oldestPendingId: pending[0] > 0 ? (pending[1] ?? undefined) : undefined,
    lastDeliveredId,
  });
  if (!decision.trim) return { trimmed: 0, held: length - maxLen };
  const trimmed = Number(await client.call('XTRIM', stream, 'MINID', decision.minId));
  return { trimmed, held: Math.max(0, length - trimmed - maxLen) };
}
