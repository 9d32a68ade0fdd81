/**
 * Capped exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff and
 * Jitter"): the delay before attempt n is uniform in [0, min(cap, base·2ⁿ)]. Jitter spreads the
 * reconnects of many clients after a shared outage so they do not arrive in lockstep.
 */
export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  /** Random source in [0, 1); injected so tests can pin it. */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly opts: BackoffOptions;

  constructor(opts: BackoffOptions) {
    if (!(opts.baseMs > 0) || !(opts.capMs >= opts.baseMs)) throw new RangeError('backoff needs 0 < baseMs <= capMs');
    this.opts = opts;
  }

  /** The delay before the next attempt; each call counts one failed attempt. */
  next(): number {
    const ceiling = Math.min(this.opts.capMs, this.opts.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    // Never zero: a floor of base/2 keeps a tight failure loop from spinning the CPU.
    return Math.max(this.opts.baseMs / 2, (this.opts.random ?? Math.random)() * ceiling);
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
