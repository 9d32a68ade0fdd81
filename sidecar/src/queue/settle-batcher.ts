import type { Redis } from 'ioredis';
import type { Clock } from '../../../lib/clock.ts';
import type { TaskQueuePlan } from '../../../lib/policy/index.ts';
import type { Logger } from '../../../lib/log.ts';
import { queueKeys, type QueueKeys } from '../../../lib/redis/key-layout.ts';
import { SETTLE, runScript } from './scripts.ts';

/** One entry's fate, as the SETTLE script spells it (see scripts.ts). */
export type SettleOp =
  | { readonly op: 'A'; readonly entryId: string }
  | { readonly op: 'R'; readonly entryId: string; readonly taskId: string; readonly delayMs: number; readonly fields: readonly (string | Buffer)[] }
  | { readonly op: 'L'; readonly entryId: string; readonly fields: readonly (string | Buffer)[] }
  | { readonly op: 'D'; readonly entryId: string; readonly fields: readonly (string | Buffer)[] }
  | { readonly op: 'a'; readonly entryId: string; readonly orderingKey: string; readonly taskId: string }
  | { readonly op: 'd'; readonly entryId: string; readonly orderingKey: string; readonly taskId: string; readonly fields: readonly (string | Buffer)[] };

/** settled: done; late: another consumer owns the entry now; failed: Redis unreachable until give-up. */
export type SettleResult = 'settled' | 'late' | 'failed';

interface Queued {
  readonly op: SettleOp;
  readonly giveUpAt: number;
  readonly resolve: (r: SettleResult) => void;
}

/** Ops per script call: large enough to amortise the round trip, small enough not to stall Redis. */
const MAX_OPS_PER_CALL = 256;
const RETRY_MS = 250;

/**
 * Settles entries in batches: whatever completed while the previous call was on the wire goes in
 * the next one, so under load a single round trip acks hundreds of tasks and at low rates an ack
 * leaves at once. A call that fails (Redis down) is retried until each op's give-up time; an op
 * that gives up leaves its entry pending, to be reclaimed and delivered again — at least once.
 */
export class SettleBatcher {
  private readonly client: Redis;
  private readonly keys: QueueKeys;
  private readonly deadLetterKey: string;
  private readonly group: string;
  private readonly consumer: string;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private queue: Queued[] = [];
  private flushing = false;
  private scheduled = false;

  constructor(client: Redis, plan: TaskQueuePlan, consumer: string, clock: Clock, logger: Logger) {
    this.client = client;
    this.keys = queueKeys(plan);
    // KEYS must name a key even when the queue has no dead-letter stream; 'D' is never sent then.
    this.deadLetterKey = this.keys.deadLetter ?? this.keys.stream;
    this.group = plan.group;
    this.consumer = consumer;
    this.clock = clock;
    this.logger = logger;
  }

  get backlog(): number {
    return this.queue.length;
  }

  settle(op: SettleOp, giveUpAt: number): Promise<SettleResult> {
    return new Promise((resolve) => {
      this.queue.push({ op, giveUpAt, resolve });
      this.schedule(0);
    });
  }

  /**
   * Settles the ops of one delivered batch with a single promise (one per task cost a promise and
   * a continuation each on the hot path). The ops still join whichever calls have room, and each
   * gets its own result and give-up time exactly as with `settle`.
   */
  settleAll(ops: readonly SettleOp[], giveUpAt: number): Promise<SettleResult[]> {
    if (ops.length === 1) return this.settle(ops[0] as SettleOp, giveUpAt).then((r) => [r]);
    return new Promise((resolve) => {
      const results: SettleResult[] = new Array(ops.length);
      let left = ops.length;
      ops.forEach((op, i) => {
        this.queue.push({
          op,
          giveUpAt,
          resolve: (r) => {
            results[i] = r;
            if (--left === 0) resolve(results);
          },
        });
      });
      this.schedule(0);
    });
  }

  private schedule(delayMs: number): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      void this.flush();
    };
    if (delayMs > 0) setTimeout(run, delayMs);
    else setImmediate(run);
  }

  private async flush(): Promise<void> {
    if (this.flushing || this.queue.length === 0) return;
    this.flushing = true;
    const batch = this.queue.splice(0, MAX_OPS_PER_CALL);
    let retryLater = false;
    try {
      const flags = (await runScript(this.client, SETTLE, [
        this.keys.stream, this.keys.delayed, this.keys.delayedTasks, this.deadLetterKey, this.keys.orderActive, this.keys.orderWaiting,
      ], this.args(batch))) as number[];
      batch.forEach((q, i) => q.resolve(flags[i] === 1 ? 'settled' : 'late'));
    } catch (err) {
      const now = this.clock.now();
      const keep = batch.filter((q) => q.giveUpAt > now);
      for (const q of batch) if (q.giveUpAt <= now) q.resolve('failed');
      this.logger.warn('queue settle failed; will retry', { err, ops: batch.length, kept: keep.length });
      this.queue.unshift(...keep);
      retryLater = keep.length > 0;
    } finally {
      this.flushing = false;
    }
    if (this.queue.length > 0) this.schedule(retryLater ? RETRY_MS : 0);
  }

  private args(batch: readonly Queued[]): (string | Buffer | number)[] {
    const args: (string | Buffer | number)[] = [this.group, this.consumer, ''];
    let ops = '';
    for (const { op } of batch) {
      ops += op.op;
      args.push(op.entryId);
      if (op.op === 'R') args.push(op.taskId, op.delayMs);
      else if (op.op === 'a' || op.op === 'd') args.push(op.orderingKey, op.taskId);
      if (op.op !== 'A' && op.op !== 'a') args.push(op.fields.length, ...op.fields);
    }
    args[2] = ops;
    return args;
  }
}
