import type { Redis } from 'ioredis';
import type { TaskQueuePlan } from '../policy/plan.ts';
import { queueKeys } from './key-layout.ts';

/** What `GET /v1/queues/{name}` answers and the Redis-state gauges show. */
export interface QueueStats {
  readonly queue: string;
  readonly stream: string;
  readonly group: string;
  readonly length: number;
  /** Undefined when the group does not exist yet (no consumer started). */
  readonly pending: number | undefined;
  readonly lag: number | undefined;
  readonly consumers: number | undefined;
  readonly lastDeliveredId: string | undefined;
  readonly delayed: number;
  /** Tasks with an ordering key waiting behind an earlier task of their key (not in the stream yet). */
  readonly waiting: number;
  readonly deadLetters: number | undefined;
}

/**
 * One pipelined round trip, all to the queue's own slot; a missing stream or group reads as zeros,
 * not as an error. The sidecar (`GET /v1/queues/{name}`, gauges) and the operator (TaskQueue status)
 * both read the numbers here.
 */
export async function readQueueStats(client: Redis, plan: TaskQueuePlan): Promise<QueueStats> {
  const keys = queueKeys(plan);
  const p = client.pipeline();
  p.xlen(keys.stream);
  p.call('XINFO', 'GROUPS', keys.stream);
  p.zcard(keys.delayed);
  p.zcard(keys.orderWaiting);
  if (keys.deadLetter) p.xlen(keys.deadLetter);
  const replies = (await p.exec()) ?? [];
  const value = (i: number) => {
    const r = replies[i];
    if (!r) throw new Error('pipeline reply missing');
    // A missing stream makes XINFO fail with "no such key": that is an empty queue.
    if (r[0]) {
      if (/no such key/i.test(r[0].message)) return undefined;
      throw r[0];
    }
    return r[1];
  };
  const groups = (value(1) as unknown[][] | undefined) ?? [];
  const group = groups.map(flatToRecord).find((g) => g.name === plan.group);
  return {
    queue: plan.name,
    stream: plan.stream,
    group: plan.group,
    length: Number(value(0) ?? 0),
    pending: group ? Number(group.pending) : undefined,
    lag: group ? (group.lag === null ? undefined : Number(group.lag)) : undefined,
    consumers: group ? Number(group.consumers) : undefined,
    lastDeliveredId: group ? String(group['last-delivered-id']) : undefined,
    delayed: Number(value(2) ?? 0),
    waiting: Number(value(3) ?? 0),
    deadLetters: plan.deadLetterStream ? Number(value(4) ?? 0) : undefined,
  };
}

function flatToRecord(flat: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}
