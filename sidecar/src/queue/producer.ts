import type { Redis } from 'ioredis';
import type { TaskQueuePlan } from '../../../lib/policy/index.ts';
import { QueueError } from './errors.ts';
import { queueKeys, type QueueKeys } from '../../../lib/redis/key-layout.ts';
import type { ReplicaAck } from './replica-ack.ts';
import { ENQUEUE, runScript } from './scripts.ts';
import { DEFAULT_CONTENT_TYPE } from './task.ts';

export interface NewTask {
  /** The bytes to deliver; a string is UTF-8 text (kept as a string, it costs the Redis client less to send). */
  readonly payload: Buffer | string;
  readonly contentType: string;
  readonly idempotencyKey: string | undefined;
  /** Tasks of one key are delivered one at a time, in the order they reached Redis. */
  readonly orderingKey?: string | undefined;
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

/** Tasks per ENQUEUE call at most when requests are joined (one request is never split). */
const MAX_JOINED_TASKS = 1_000;

interface Pending {
  readonly queueId: string;
  readonly replicated: { readonly timeoutMs: number } | undefined;
  readonly keys: QueueKeys;
  readonly tasks: readonly NewTask[];
  readonly resolve: (out: Enqueued[]) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Appends tasks to a queue in one round trip, however many there are (the batch form posts up to
 * a thousand). Immediate tasks go straight into the stream with XADD; delayed ones into the
 * queue's delay set. Retention is not applied here: an unguarded `XADD MAXLEN` could drop entries
 * that are delivered and not yet acknowledged, so trimming is the consumers' guarded job.
 *
 * Requests for the same queue that arrive in the same turn of the event loop (a producer with
 * several posts in flight) are joined into one ENQUEUE call, up to MAX_JOINED_TASKS tasks: one
 * socket write and one script run instead of one each. The script handles the tasks in order, so
 * each request's tasks stay together and an idempotency key seen earlier in the call answers with
 * its id, exactly as two calls one after the other would. A failed call fails every request in it.
 */
export class TaskProducer {
  private readonly client: Redis;
  private readonly windowMs: number;
  private readonly replicaAck: (() => ReplicaAck) | undefined;
  private readonly waiting = new Map<string, Pending[]>();
  private scheduled = false;

  /** `replicaAck`: the client for `durability: Replicated` queues, made on first use. */
  constructor(client: Redis, opts: { idempotencyWindowMs?: number; replicaAck?: () => ReplicaAck } = {}) {
    this.client = client;
    this.replicaAck = opts.replicaAck;
    this.windowMs = opts.idempotencyWindowMs ?? DEFAULT_IDEMPOTENCY_WINDOW_MS;
  }

  enqueue(queue: TaskQueuePlan, tasks: readonly NewTask[]): Promise<Enqueued[]> {
    if (tasks.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      const keys = queueKeys(queue);
      let list = this.waiting.get(keys.stream);
      if (!list) {
        list = [];
        this.waiting.set(keys.stream, list);
      }
      const replicated = queue.durability === 'Replicated' ? { timeoutMs: queue.replicationTimeoutMs } : undefined;
      list.push({ queueId: queue.id, replicated, keys, tasks, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // After the poll phase: every request read in this turn has had its chance to join.
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const all = [...this.waiting.values()];
    this.waiting.clear();
    for (const list of all) {
      let i = 0;
      while (i < list.length) {
        const call: Pending[] = [];
        let n = 0;
        do {
          const p = list[i++] as Pending;
          call.push(p);
          n += p.tasks.length;
        } while (i < list.length && n + (list[i] as Pending).tasks.length <= MAX_JOINED_TASKS);
        void this.run(call, n);
      }
    }
  }

  private async run(call: readonly Pending[], n: number): Promise<void> {
    const keys = (call[0] as Pending).keys;
    // A task with no key, no delay and the default content type is sent as its payload alone.
    const args: (string | Buffer | number)[] = [this.windowMs, ''];
    let shape = '';
    for (const p of call) {
      for (const t of p.tasks) {
        if (t.idempotencyKey === undefined && !(t.delayMs > 0) && t.contentType === DEFAULT_CONTENT_TYPE && t.orderingKey === undefined) {
          shape += 'p';
          args.push(t.payload);
        } else if (t.orderingKey !== undefined) {
          shape += 'o';
          args.push(t.idempotencyKey ?? '', t.delayMs > 0 ? Math.ceil(t.delayMs) : 0, t.contentType === DEFAULT_CONTENT_TYPE ? '' : t.contentType, t.payload, t.orderingKey);
        } else {
          shape += 'f';
          args.push(t.idempotencyKey ?? '', t.delayMs > 0 ? Math.ceil(t.delayMs) : 0, t.contentType === DEFAULT_CONTENT_TYPE ? '' : t.contentType, t.payload);
        }
      }
    }
    args[1] = shape;
    let flat: (string | number)[];
    const replicated = (call[0] as Pending).replicated;
    try {
      const ack = replicated && this.replicaAck ? this.replicaAck() : undefined;
      const conn = ack ? await ack.connectionFor(keys.stream) : this.client;
      flat = (await runScript(conn, ENQUEUE, [
        keys.stream, keys.delayed, keys.delayedTasks, keys.seq, keys.idempotency, keys.idempotencyExpiry, keys.orderActive, keys.orderWaiting,
      ], args)) as (string | number)[];
      if (ack && replicated) await ack.confirm(conn, replicated.timeoutMs);
    } catch (err) {
      for (const p of call) {
        p.reject(err instanceof QueueError ? err : new QueueError('SLUICE_ERR_QUEUE_UNAVAILABLE', `could not enqueue to ${p.queueId}: ${(err as Error).message}`, { cause: err }));
      }
      return;
    }
    let at = 0;
    for (const p of call) {
      const out: Enqueued[] = new Array(p.tasks.length);
      for (let k = 0; k < p.tasks.length; k++, at += 2) out[k] = { id: String(flat[at]), duplicate: flat[at + 1] === 1 };
      p.resolve(out);
    }
  }
}
