import type { Redis } from 'ioredis';
import type { TaskQueuePlan } from '../../../lib/policy/index.ts';
import { QueueError } from './errors.ts';
import { queueKeys } from './keys.ts';
import { ENQUEUE, runScript } from './scripts.ts';
import { DEFAULT_CONTENT_TYPE } from './task.ts';

export interface NewTask {
  readonly payload: Buffer;
  readonly contentType: string;
  readonly idempotencyKey: string | undefined;
  /** 0 = deliverable now; otherwise kept in the queue's delay set until Redis time passes it. */
  readonly delayMs: number;
}

export interface Enqueued {
  readonly id: string;
  /** True when the idempotency key was seen within its window: no second task was created. */
  readonly duplicate: boolean;
}

/** How long an `Idempotency-Key` keeps answering with the same task id, unless configured. */
export const DEFAULT_IDEMPOTENCY_WINDOW_MS = 24 * 3_600_000;

/**
 * Appends tasks to a queue in one round trip, however many there are (the batch form posts up to
 * a thousand). Immediate tasks go straight into the stream with XADD; delayed ones into the
 * queue's delay set. Retention is not applied here: an unguarded `XADD MAXLEN` could drop entries
 * that are delivered and not yet acknowledged, so trimming is the consumers' guarded job.
 */
export class TaskProducer {
  private readonly client: Redis;
  private readonly windowMs: number;

  constructor(client: Redis, opts: { idempotencyWindowMs?: number } = {}) {
    this.client = client;
    this.windowMs = opts.idempotencyWindowMs ?? DEFAULT_IDEMPOTENCY_WINDOW_MS;
  }

  async enqueue(queue: TaskQueuePlan, tasks: readonly NewTask[]): Promise<Enqueued[]> {
    const keys = queueKeys(queue.stream);
    const args: (string | Buffer | number)[] = [keys.idempotencyPrefix, this.windowMs, tasks.length];
    for (const t of tasks) {
      args.push(t.idempotencyKey ?? '', Math.max(0, Math.ceil(t.delayMs)), t.contentType === DEFAULT_CONTENT_TYPE ? '' : t.contentType, t.payload);
    }
    let reply: unknown;
    try {
      reply = await runScript(this.client, ENQUEUE, [keys.stream, keys.delayed, keys.delayedTasks, keys.seq], args);
    } catch (err) {
      throw new QueueError('SLUICE_ERR_QUEUE_UNAVAILABLE', `could not enqueue to ${queue.id}: ${(err as Error).message}`, { cause: err });
    }
    const flat = reply as (string | number)[];
    const out: Enqueued[] = [];
    for (let i = 0; i < flat.length; i += 2) out.push({ id: String(flat[i]), duplicate: flat[i + 1] === 1 });
    return out;
  }
}
