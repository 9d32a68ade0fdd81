import type { UpstreamPlan } from '../../../lib/policy/upstream.ts';
import type { Endpoint } from './endpoint.ts';

export type OutlierSpec = UpstreamPlan['outlierDetection'];

/**
 * Consecutive-failure outlier detection, as Envoy's: `consecutiveFailures` failed tries in a row
 * eject an endpoint for `baseEjectionTime × n`, n counting its recent ejections (capped at
 * `maxEjectionTime`), so an endpoint that keeps coming back broken stays out longer. Each
 * `interval` without a new ejection forgives one step of n. Ejection never takes more than
 * `maxEjectionPercent` of the endpoints out at once.
 *
 * Pure bookkeeping on Endpoint fields with the time passed in: the clock is the caller's.
 */
export class OutlierDetector {
  private readonly spec: OutlierSpec;

  constructor(spec: OutlierSpec) {
    this.spec = spec;
  }

  /** A try on `ep` succeeded (the endpoint answered as a healthy one does). */
  success(ep: Endpoint, now: number): void {
    ep.consecutiveFailures = 0;
    this.decay(ep, now);
  }

  /**
   * A try on `ep` failed (connect failure, reset, timeout, or a failing status). Returns true when
   * this failure ejected it.
   */
  failure(ep: Endpoint, all: readonly Endpoint[], now: number): boolean {
    this.decay(ep, now);
    ep.consecutiveFailures++;
    if (ep.consecutiveFailures < this.spec.consecutiveFailures || ep.isEjected(now)) return false;
    let ejected = 0;
    for (const e of all) if (e !== ep && e.isEjected(now)) ejected++;
    if (((ejected + 1) * 100) / all.length > this.spec.maxEjectionPercent) return false;
    ep.ejections++;
    ep.ejectedUntil = now + Math.min(this.spec.baseEjectionMs * ep.ejections, this.spec.maxEjectionMs);
    // Forgiveness counts from the end of the ejection: time spent ejected proves nothing.
    ep.lastDecayAt = ep.ejectedUntil;
    ep.consecutiveFailures = 0;
    return true;
  }

  /** One step of forgiveness per interval that passed without an ejection. */
  private decay(ep: Endpoint, now: number): void {
    if (ep.ejections === 0 || ep.isEjected(now)) return;
    const steps = Math.floor((now - ep.lastDecayAt) / this.spec.intervalMs);
    if (steps <= 0) return;
    ep.ejections = Math.max(0, ep.ejections - steps);
    ep.lastDecayAt += steps * this.spec.intervalMs;
  }
}
