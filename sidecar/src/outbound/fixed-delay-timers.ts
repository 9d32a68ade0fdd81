import type { Clock } from '../../../lib/clock.ts';

/** An armed expiry; `disarm` it when what it guards ended first. */
export interface Armed<T> {
  readonly at: number;
  target: T | undefined;
}

/**
 * Expiries that all share one delay (an Upstream's call timeout, its per-try timeout, the
 * response-header hold): armed in time order, they fall due in that order, so one timer, set for
 * the oldest, serves them all. Arming is an array push and disarming clears a field, where a timer
 * per call costs a Timeout object, a timer-list insert and an unlink on every call of the outbound
 * hot path. Disarmed entries leave the queue when their time comes: it holds one delay's worth.
 */
export class FixedDelayTimers<T> {
  readonly delayMs: number;
  private readonly clock: Clock;
  private readonly onExpire: (target: T) => void;
  private queue: Armed<T>[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Set while due entries run: one they arm is scheduled after the run, not by a second timer. */
  private firing = false;

  constructor(delayMs: number, clock: Clock, onExpire: (target: T) => void) {
    if (!(delayMs >= 0)) throw new RangeError('delay must be ≥ 0');
    this.delayMs = delayMs;
    this.clock = clock;
    this.onExpire = onExpire;
  }

  arm(target: T): Armed<T> {
    const entry: Armed<T> = { at: this.clock.now() + this.delayMs, target };
    this.queue.push(entry);
    if (this.timer === undefined && !this.firing) this.schedule(entry.at);
    return entry;
  }

  /** Armed entries neither fired nor disarmed yet. */
  get pending(): number {
    let n = 0;
    for (let i = this.head; i < this.queue.length; i++) if (this.queue[i]!.target !== undefined) n++;
    return n;
  }

  private schedule(at: number): void {
    this.timer = setTimeout(this.fire, Math.max(0, at - this.clock.now()));
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    const now = this.clock.now();
    const q = this.queue;
    this.firing = true;
    try {
      while (this.head < q.length) {
        const e = q[this.head]!;
        if (e.target !== undefined && e.at > now) break;
        this.head++;
        const target = e.target;
        e.target = undefined;
        if (target !== undefined) this.onExpire(target);
      }
    } finally {
      this.firing = false;
    }
    if (this.head === q.length) {
      this.queue = [];
      this.head = 0;
      return;
    }
    // Fired entries are dropped from the front now and then, not on every shift.
    if (this.head > 1024 && this.head * 2 > q.length) {
      this.queue = q.slice(this.head);
      this.head = 0;
    }
    this.schedule(this.queue[this.head]!.at);
  };
}

/** The entry will not fire (a no-op when it already did, or when there is none). */
export function disarm<T>(entry: Armed<T> | undefined): void {
  if (entry) entry.target = undefined;
}
