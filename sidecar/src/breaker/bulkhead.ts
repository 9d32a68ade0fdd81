/**
 * Caps concurrent calls at `maxConcurrent`; up to `maxPending` more wait (FIFO) at most
 * `maxPendingWaitMs` for a slot. Past that a call is refused at once: queueing without bound
 * only turns overload into latency and memory.
 */
export class Bulkhead {
  private active = 0;
  private readonly queue: Array<{ resolve: (ok: boolean) => void; timer: NodeJS.Timeout }> = [];
  readonly maxConcurrent: number;
  readonly maxPending: number;
  readonly maxPendingWaitMs: number;

  constructor(opts: { maxConcurrent: number; maxPending: number; maxPendingWaitMs: number }) {
    if (opts.maxConcurrent < 1) throw new RangeError('bulkhead.maxConcurrentRequests must be ≥ 1');
    if (opts.maxPending < 0) throw new RangeError('bulkhead.maxPendingRequests must be ≥ 0');
    this.maxConcurrent = opts.maxConcurrent;
    this.maxPending = opts.maxPending;
    this.maxPendingWaitMs = opts.maxPendingWaitMs;
  }

  get inFlight(): number {
    return this.active;
  }

  get pending(): number {
    return this.queue.length;
  }

  /** true: a slot is held (call release() once); false: refused. Synchronous when it can be. */
  acquire(): boolean | Promise<boolean> {
    if (this.active < this.maxConcurrent) {
      this.active++;
      return true;
    }
    if (this.queue.length >= this.maxPending) return false;
    return new Promise((resolve) => {
      const waiter = {
        resolve,
        timer: setTimeout(() => {
          const i = this.queue.indexOf(waiter);
          if (i >= 0) this.queue.splice(i, 1);
          resolve(false);
        }, this.maxPendingWaitMs),
      };
      this.queue.push(waiter);
    });
  }

  release(): void {
    const next = this.queue.shift();
    if (next) {
      clearTimeout(next.timer);
      next.resolve(true); // the slot passes straight to the next waiter
    } else {
      this.active--;
    }
  }
}
