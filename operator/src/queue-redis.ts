/**
 * What the TaskQueue reconciler does in Redis — the external state its finalizer guards: ensure
 * the stream and consumer group exist, read the queue's numbers, and delete everything the queue
 * owns. Key names and the stats reading are the sidecar's own (sidecar/src/queue/keys.ts,
 * queue-stats.ts), so the operator and the consumers can never disagree on them.
 */
import type { Redis } from 'ioredis';
import type { TaskQueuePlan } from '../../lib/policy/plan.ts';
import { queueKeys } from '../../sidecar/src/queue/keys.ts';
import { readQueueStats, type QueueStats } from '../../sidecar/src/queue/queue-stats.ts';

export type { QueueStats };

/**
 * XGROUP CREATE ... MKSTREAM, idempotent. The group starts at '0' — as the sidecar's consumers
 * create it — so tasks produced before any worker existed are delivered, and count as lag.
 */
export async function ensureStreamAndGroup(client: Redis, plan: Pick<TaskQueuePlan, 'stream' | 'group'>): Promise<'created' | 'exists'> {
  try {
    await client.call('XGROUP', 'CREATE', plan.stream, plan.group, '0', 'MKSTREAM');
    return 'created';
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('BUSYGROUP')) return 'exists';
    throw err;
  }
}

export function queueStats(client: Redis, plan: TaskQueuePlan): Promise<QueueStats> {
  return readQueueStats(client, plan);
}

/**
 * deletionPolicy: Delete — the stream (and with it the group), the dead-letter stream, and the
 * queue's side keys (delayed tasks, their sequence, idempotency records). Idempotent: deleting
 * what is already gone is success. Returns how many keys were removed.
 */
export async function deleteQueueData(client: Redis, target: { stream: string; deadLetterStream: string | undefined }): Promise<number> {
  const keys = queueKeys(target.stream);
  const fixed = [target.stream, keys.delayed, keys.delayedTasks, keys.seq, ...(target.deadLetterStream ? [target.deadLetterStream] : [])];
  let removed = Number(await client.del(...fixed));
  // Idempotency records are many small keys under one prefix; SCAN never blocks the server.
  let cursor = '0';
  do {
    const [next, found] = await client.scan(cursor, 'MATCH', `${escapeGlob(keys.idempotencyPrefix)}*`, 'COUNT', 500);
    cursor = next;
    if (found.length > 0) removed += Number(await client.del(...found));
  } while (cursor !== '0');
  return removed;
}

/** SCAN MATCH is a glob: the `{stream}` hash tag and stream names may contain glob characters. */
function escapeGlob(s: string): string {
  return s.replace(/[\\*?[\]]/g, (c) => `\\${c}`);
}
