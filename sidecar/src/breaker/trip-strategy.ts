import { RollingWindow } from './rolling-window.ts';

export interface TripConditions {
  consecutiveFailures: number | undefined;
  failureRatePercent: number | undefined;
  slowCallMs: number | undefined;
  slowCallRatePercent: number | undefined;
  minimumRequests: number;
  windowMs: number;
}

export type TripReason = 'ConsecutiveFailures' | 'FailureRate' | 'SlowCallRate';

/**
 * Decides when a closed circuit opens, kept apart from the breaker's state machine (as cockatiel
 * separates ConsecutiveBreaker/SamplingBreaker from CircuitBreakerPolicy). Any one condition
 * trips; the rates are judged only over at least `minimumRequests` calls in the rolling window.
 */
export class TripStrategy {
  private readonly c: TripConditions;
  private readonly window: RollingWindow;
  private consecutive = 0;

  constructor(conditions: TripConditions) {
    if (conditions.minimumRequests < 1) throw new RangeError('minimumRequests must be ≥ 1');
    this.c = conditions;
    this.window = new RollingWindow(conditions.windowMs);
  }

  /** Records one outcome; returns why the circuit should open now, or undefined. */
  record(now: number, failure: boolean, durationMs: number): TripReason | undefined {
    const c = this.c;
    const slow = c.slowCallMs !== undefined && durationMs >= c.slowCallMs;
    this.window.record(now, failure, slow);
    this.consecutive = failure ? this.consecutive + 1 : 0;
    if (c.consecutiveFailures !== undefined && this.consecutive >= c.consecutiveFailures) return 'ConsecutiveFailures';
    if (c.failureRatePercent === undefined && c.slowCallRatePercent === undefined) return undefined;
    const s = this.window.snapshot(now);
    if (s.total < c.minimumRequests) return undefined;
    if (c.failureRatePercent !== undefined && s.failures * 100 >= c.failureRatePercent * s.total) return 'FailureRate';
    if (c.slowCallRatePercent !== undefined && s.slow * 100 >= c.slowCallRatePercent * s.total) return 'SlowCallRate';
    return undefined;
  }

  reset(): void {
    this.consecutive = 0;
    this.window.reset();
  }

  stats(now: number): { total: number; failures: number; slow: number; consecutiveFailures: number } {
    return { ...this.window.snapshot(now), consecutiveFailures: this.consecutive };
  }
}
