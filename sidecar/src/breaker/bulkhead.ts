import type { PriorityGate } from '../adaptive/priority-gate.ts';

/** Why a call got no slot: the static cap, the adaptive limit, or its priority level's share. */
export type SlotRefusal = 'bulkhead_full' | 'concurrency_limited' | 'priority_shed';

interface Waiter {
  readonly level: number;
  readonly resolve: (v: true | SlotRefusal) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * Caps concurrent calls at the smaller of `maxConcurrent` (the static bulkhead) and the adaptive
 * limit, when a rule has one; up to `maxPending` more wait at most `maxPendingWaitMs` for a slot.
 * Past that a call is refused at once: queueing without bound only turns overload into latency
 * and memory. One queue serves both limits, so a rule never holds two backlogs.
 *
 * With priority levels (0 the highest) a level may only fill its share of the limit
 * (PriorityGate), waiters are served highest level first (FIFO within a level), and a full queue
 * makes room for a higher level by refusing its newest lowest-level waiter.
 */
export class Bulkhead {
  private active = 0;
  private readonly queue: Waiter[] = [];
  readonly maxConcurrent: number;
  readonly maxPending: number;
  readonly maxPendingWaitMs: number;
  private readonly adaptive: { readonly limit: number } | undefined;
  private readonly priority: PriorityGate | undefined;

  constructor(opts: {
    maxConcurrent: number; maxPending: number; maxPendingWaitMs: number;
    adaptive?: { readonly limit: number }; priority?: PriorityGate;
  }) {
    if (opts.maxConcurrent < 1) throw new RangeError('bulkhead.maxConcurrentRequests must be ≥ 1');
    if (opts.maxPending < 0) throw new RangeError('bulkhead.maxPendingRequests must be ≥ 0');
    this.maxConcurrent = opts.maxConcurrent;
    this.maxPending = opts.maxPending;
    this.maxPendingWaitMs = opts.maxPendingWaitMs;
    this.adaptive = opts.adaptive;
    this.priority = opts.priority;
  }

  get inFlight(): number {
    return this.active;
  }

  get pending(): number {
    return this.queue.length;
  }

  /** The concurrency limit in force: the smaller of the static cap and the adaptive limit. */
  get limit(): number {
    const a = this.adaptive?.limit;
    return a === undefined || a > this.maxConcurrent ? this.maxConcurrent : a;
  }

  /**
   * true: a slot is held (call release() once); otherwise why it was refused. Synchronous when
   * it can be; a promise when the call waits in the queue.
   */
  acquire(level = 0): true | SlotRefusal | Promise<true | SlotRefusal> {
    if (this.active < this.cap(level) && !(this.queue.length > 0 && (this.queue[0] as Waiter).level <= level)) {
      this.active++;
      return true;
    }
    if (this.maxPending === 0) return this.why();
    if (this.queue.length >= this.maxPending) {
      const last = this.queue[this.queue.length - 1] as Waiter;
      if (last.level <= level) return this.why();
      this.queue.pop();
      clearTimeout(last.timer);
      last.resolve('priority_shed');
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        level,
        resolve,
        timer: setTimeout(() => {
          const i = this.queue.indexOf(waiter);
          if (i >= 0) this.queue.splice(i, 1);
          resolve(this.why());
        }, this.maxPendingWaitMs),
      };
      let i = this.queue.length;
      while (i > 0 && (this.queue[i - 1] as Waiter).level > level) i--;
      this.queue.splice(i, 0, waiter);
    });
  }

  /**
   * DryRun: the call always gets a slot (so release() stays paired), and the answer says whether
   * an enforced rule would have let it in without waiting.
   */
  acquireShadow(level = 0): true | SlotRefusal {
    const ok = this.active < this.cap(level);
    this.active++;
    return ok ? true : this.why();
  }

  release(): void {
    this.active--;
    this.drain();
  }

  /** Hands free slots to waiters, highest level first; called on release and when the limit rises. */
  drain(): void {
    while (this.queue.length > 0) {
      const next = this.queue[0] as Waiter;
      if (this.active >= this.cap(next.level)) return;
      this.queue.shift();
      clearTimeout(next.timer);
      this.active++;
      next.resolve(true);
    }
  }

  private cap(level: number): number {
    const limit = this.limit;
    return this.priority ? this.priority.concurrencyCap(limit, level) : limit;
  }

  /** At the moment of a refusal: below the limit means only the level's share was used up. */
  private why(): SlotRefusal {
    const limit = this.limit;
    if (this.priority && this.active < limit) return 'priority_shed';
    return limit < this.maxConcurrent ? 'concurrency_limited' : 'bulkhead_full';
  }
}
