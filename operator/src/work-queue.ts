/**
 * A work queue of keys (`namespace/name`), shaped like client-go's workqueue:
 * - deduplicated: a key added ten times before a worker takes it is processed once;
 * - serialised per key: a key being processed is never processed concurrently; if it is added
 *   meanwhile it is marked dirty and processed again right after (so no change is lost);
 * - rate-limited retries: a handler that throws is retried after a per-key exponential delay
 *   (reset when the key succeeds), so one broken object cannot hot-loop the operator.
 */
export interface ReconcileResult {
  /** Process the key again after this many milliseconds (a known wait, not a failure). */
  requeueAfter?: number;
}

export type KeyHandler = (key: string) => Promise<ReconcileResult | void>;

export interface WorkQueueOptions {
  handler: KeyHandler;
  concurrency?: number;
  /** First retry delay after a failure; doubles per consecutive failure of the same key. */
  retryBaseMs?: number;
  retryCapMs?: number;
  onError?: (key: string, err: unknown, retryInMs: number) => void;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly opts: Required<Omit<WorkQueueOptions, 'onError'>> & Pick<WorkQueueOptions, 'onError'>;
  private active = 0;
  private running = false;
  private idleWaiters: (() => void)[] = [];

  constructor(opts: WorkQueueOptions) {
    this.opts = { concurrency: 4, retryBaseMs: 50, retryCapMs: 30_000, ...opts };
  }

  start(): void {
    this.running = true;
    this.pump();
  }

  /** Stops taking keys; in-flight handlers finish on their own. Pending delayed adds are dropped. */
  stop(): void {
    this.running = false;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  add(key: string): void {
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.pump();
  }

  /** Adds the key after a delay; an earlier pending delayed add of the same key wins. */
  addAfter(key: string, ms: number): void {
    if (ms <= 0) return this.add(key);
    if (this.timers.has(key)) return;
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    t.unref();
    this.timers.set(key, t);
  }

  get length(): number {
    return this.queue.length;
  }

  /** Resolves when nothing is queued or processing (tests and graceful handover use it). */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.running && this.active < this.opts.concurrency && this.queue.length > 0) {
      const key = this.queue.shift() as string;
      this.queued.delete(key);
      this.processing.add(key);
      this.active++;
      void this.process(key);
    }
    if (this.queue.length === 0 && this.active === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private async process(key: string): Promise<void> {
    try {
      const result = await this.opts.handler(key);
      this.failures.delete(key);
      if (result?.requeueAfter !== undefined) this.addAfter(key, result.requeueAfter);
    } catch (err) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const delay = Math.min(this.opts.retryCapMs, this.opts.retryBaseMs * 2 ** Math.min(n - 1, 20));
      this.opts.onError?.(key, err, delay);
      this.addAfter(key, delay);
    } finally {
      this.processing.delete(key);
      this.active--;
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }
}

/**
 * The work queue every reconciler runs on: four keys at a time, and a failed reconcile counted
 * and logged (the queue retries it with per-key backoff).
 */
export function reconcileQueue(opts: {
  kind: string;
  handler: KeyHandler;
  metrics: { reconciles: { inc(labels: { kind: string; result: string }): void } };
  logger: { warn(msg: string, fields?: Record<string, unknown>): void };
}): WorkQueue {
  return new WorkQueue({
    handler: opts.handler,
    concurrency: 4,
    onError: (key, err, retryInMs) => {
      opts.metrics.reconciles.inc({ kind: opts.kind, result: 'error' });
      opts.logger.warn('reconcile failed; will retry', { kind: opts.kind, key, retryInMs, err });
    },
  });
}
