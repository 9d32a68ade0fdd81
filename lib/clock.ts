/**
 * Time is injected: limiters, breakers, leases and retry timers read a Clock so unit tests can
 * drive them with fake time. `now()` is a monotonic millisecond reading (never steps backwards),
 * which is what elapsed-time logic needs; `wallNow()` is the wall clock for timestamps people read.
 */
export interface Clock {
  now(): number;
  wallNow(): number;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
};

/** A clock that only moves when a test says so. */
export class ManualClock implements Clock {
  private t: number;
  private readonly wallOffset: number;

  constructor(start = 0, wallStart = 1_700_000_000_000) {
    this.t = start;
    this.wallOffset = wallStart - start;
  }

  now(): number {
    return this.t;
  }

  wallNow(): number {
    return this.t + this.wallOffset;
  }

  advance(ms: number): void {
    if (ms < 0) throw new RangeError('a monotonic clock cannot go backwards');
    this.t += ms;
  }
}
