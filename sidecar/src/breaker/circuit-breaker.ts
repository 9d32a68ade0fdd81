import { TripStrategy, type TripConditions, type TripReason } from './trip-strategy.ts';

export type CircuitStateName = 'closed' | 'open' | 'half-open';

/**
 * The breaker's state as a discriminated union: half-open bookkeeping (probes in flight,
 * successes so far) exists only while half-open, and an open circuit only knows when it may probe.
 */
type State =
  | { readonly name: 'closed' }
  | { readonly name: 'open'; readonly until: number; readonly openMs: number }
  | { readonly name: 'half-open'; readonly openMs: number; inFlight: number; successes: number };

export interface BreakerOptions {
  trip: TripConditions;
  openMs: number;
  maxOpenMs: number;
  maxProbes: number;
  successesToClose: number;
}

export interface StateChange {
  from: CircuitStateName;
  to: CircuitStateName;
  reason: TripReason | 'OpenDurationElapsed' | 'ProbeFailed' | 'ProbesSucceeded';
  openMs?: number;
}

/** What `tryAcquire` answers: pass normally, pass as a half-open probe, or reject. */
export const ADMIT = 0;
export const ADMIT_PROBE = 1;
export const REJECT = 2;
export type Admission = typeof ADMIT | typeof ADMIT_PROBE | typeof REJECT;

/**
 * closed → open when the trip strategy says so; open → half-open once `openMs` has passed (checked
 * lazily on the next call, no timer); half-open admits at most `maxProbes` concurrent calls and
 * closes after `successesToClose` successes, or reopens on the first failure with the open time
 * doubled, up to `maxOpenMs`. A successful close resets the backoff.
 */
export class CircuitBreaker {
  private state: State = { name: 'closed' };
  private readonly opts: BreakerOptions;
  private readonly strategy: TripStrategy;
  private readonly onChange: (change: StateChange) => void;

  constructor(opts: BreakerOptions, onChange: (change: StateChange) => void = () => {}) {
    if (opts.maxProbes < 1) throw new RangeError('halfOpen.maxProbes must be ≥ 1');
    if (opts.successesToClose < 1) throw new RangeError('halfOpen.successesToClose must be ≥ 1');
    if (!(opts.openMs > 0)) throw new RangeError('openDuration must be > 0');
    this.opts = opts;
    this.strategy = new TripStrategy(opts.trip);
    this.onChange = onChange;
  }

  stateName(now: number): CircuitStateName {
    const s = this.state;
    if (s.name === 'open' && now >= s.until) return 'half-open';
    return s.name;
  }

  tryAcquire(now: number): Admission {
    const s = this.state;
    if (s.name === 'closed') return ADMIT;
    if (s.name === 'open') {
      if (now < s.until) return REJECT;
      this.state = { name: 'half-open', openMs: s.openMs, inFlight: 0, successes: 0 };
      this.onChange({ from: 'open', to: 'half-open', reason: 'OpenDurationElapsed' });
      return this.tryAcquire(now);
    }
    if (s.inFlight >= this.opts.maxProbes) return REJECT;
    s.inFlight++;
    return ADMIT_PROBE;
  }

  /** Milliseconds until the circuit will let a probe through (0 unless open). */
  retryAfterMs(now: number): number {
    const s = this.state;
    if (s.name === 'open') return Math.max(0, Math.ceil(s.until - now));
    if (s.name === 'half-open') return Math.ceil(Math.min(this.opts.openMs, 1_000));
    return 0;
  }

  /** Records the end of a call admitted by tryAcquire. */
  onResult(now: number, admission: Admission, failure: boolean, durationMs: number): void {
    const s = this.state;
    if (admission === ADMIT_PROBE) {
      if (s.name !== 'half-open') return; // a late probe from an earlier half-open period
      s.inFlight--;
      if (failure) {
        this.open(now, Math.min(s.openMs * 2, this.opts.maxOpenMs), 'half-open', 'ProbeFailed');
      } else if (++s.successes >= this.opts.successesToClose) {
        this.state = { name: 'closed' };
        this.strategy.reset();
        this.onChange({ from: 'half-open', to: 'closed', reason: 'ProbesSucceeded' });
      }
      return;
    }
    if (s.name !== 'closed') return; // a call admitted before the circuit opened
    const reason = this.strategy.record(now, failure, durationMs);
    if (reason) this.open(now, this.opts.openMs, 'closed', reason);
  }

  /** Releases a probe slot without judging the call (e.g. the client went away). */
  onCancel(admission: Admission): void {
    const s = this.state;
    if (admission === ADMIT_PROBE && s.name === 'half-open') s.inFlight--;
  }

  stats(now: number): object {
    return { state: this.stateName(now), ...this.strategy.stats(now) };
  }

  private open(now: number, openMs: number, from: CircuitStateName, reason: StateChange['reason']): void {
    this.state = { name: 'open', until: now + openMs, openMs };
    this.onChange({ from, to: 'open', reason, openMs });
  }
}
