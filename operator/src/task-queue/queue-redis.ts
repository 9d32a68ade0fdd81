/**
 * What the TaskQueue reconciler does in Redis — the external state its finalizer guards: move a
 * queue's data out of the old key layout, ensure the stream and consumer group exist, read the
 * queue's numbers, and delete everything the queue owns. Key names, the migration and the stats
 * reading come from lib/redis, the same code the sidecars run, so the two can never disagree.
 */
import type { Redis } from 'ioredis';
import type { TaskQueuePlan } from '../../../lib/policy/plan.ts';
import { queueKeys, type QueueIdentity } from '../../../lib/redis/key-layout.ts';
import { checkLayoutVersion, migrateQueue } from '../../../lib/redis/queue-migration.ts';
import { readQueueStats, type QueueStats } from '../../../lib/redis/queue-stats.ts';

export type { QueueStats };

/**
 * Migration first (a group created in the new layout before the old stream moved would only be
 * replaced by it), then XGROUP CREATE ... MKSTREAM, idempotent. The group starts at '0' — as the
 * sidecar's consumers create it — so tasks produced before any worker existed are delivered, and
 * count as lag.
 */
export async function ensureStreamAndGroup(client: Redis, plan: TaskQueuePlan): Promise<'created' | 'exists'> {
  await checkLayoutVersion(client);
  await migrateQueue(client, plan);
  try {
    await client.call('XGROUP', 'CREATE', queueKeys(plan).stream, plan.group, '0', 'MKSTREAM');
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
 * deletionPolicy: Delete — the queue's own keys and nothing else: its stream (and with it the
 * group), dead letters, delayed tasks, their sequence, idempotency records, layout mark. They are
 * a fixed list in one slot of the queue's namespace, so this is one DEL, never a SCAN or a key a
 * user named. Idempotent: deleting what is already gone is success. Returns how many keys went.
 */
export async function deleteQueueData(client: Redis, queue: QueueIdentity): Promise<number> {
  return Number(await client.del(...queueKeys(queue).all));
}
