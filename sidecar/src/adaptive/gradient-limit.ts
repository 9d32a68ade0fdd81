import type { AdaptiveConcurrencyPlan } from '../../../lib/policy/adaptive.ts';
import { percentile, type ConcurrencyLimit } from './concurrency-limit.ts';

/**
 * The latency percentile a window is judged by: the median, as Envoy's default. A queue at the app
 * moves the median as surely as the tail, and the median does not jump with one stalled call.
 */
const SAMPLE_PERCENTILE = 0.5;
const MIN_GRADIENT = 0.5;
/**
 * Each window moves the limit this share of the way to its new value (Netflix gradient2's
 * smoothing): one window slowed by something other than the app — a GC pause, a stalled host —
 * moves it a little, while a lasting change moves it all the way within a second or so.
 */
const SMOOTHING = 0.25;
/**
 * Windows in a row at the smallest gradient (latency at least twice the target), with the limit
 * already near minLimit, after which the no-load latency is measured again at once: the limit has
 * been cut about as far as it goes and the latency has not come down, so the app's service time itself has grown (a slower
 * dependency, bigger tasks) and the old minRTT would pin the limit near minLimit.
 */
const SLOW_WINDOWS_TO_REMEASURE = 10;
const MAX_GRADIENT = 2;

/**
 * The gradient controller of Envoy's adaptive concurrency filter (after Netflix's gradient
 * limits). Two alternating phases:
 *  - measuring: the limit is pinned to `minLimit` until `minRttSamples` calls admitted in this
 *    phase have finished; their median is the no-load latency (minRTT). At that concurrency the
 *    app has no queue of its own, so the measure is its service time, not its backlog.
 *  - following: every `sampleWindow` the window's median latency is compared with
 *    minRTT × (1 + tolerance): gradient = clamp(that / median, 0.5, 2), and
 *    limit ← limit × gradient + √(limit × gradient) — the square-root headroom keeps a little
 *    queueing so growth in the app's capacity shows up as no rise in latency — moved a quarter
 *    of the way per window (SMOOTHING).
 * Every `minRttInterval` (±10 % jitter, so sidecars of one app do not measure together) the
 * controller measures again. This is how it avoids drift under sustained overload: minRTT is never
 * an average of what is observed (which queueing would drag upward, and the limit with it); it is
 * replaced by a fresh measure taken where no queue can form. The opposite drift — the app's own
 * service time grows, and an old minRTT keeps the limit pinned low — ends after ten windows in a
 * row at the smallest gradient with the limit already near minLimit: then it measures again. A window with an overload answer
 * from the app (429 / 503 / timeout) also caps the new limit at 90 % of the old.
 */
export class GradientLimit implements ConcurrencyLimit {
  private readonly plan: AdaptiveConcurrencyPlan;
  private readonly random: () => number;
  private current: number;
  private minRtt: number | undefined;
  private measuring: { since: number; samples: number[] } | undefined;
  private nextMeasure = 0;
  private windowStart: number;
  private window: number[] = [];
  private overloadedInWindow = false;
  private slowWindows = 0;

  constructor(plan: AdaptiveConcurrencyPlan, now: number, random: () => number = Math.random) {
    this.plan = plan;
    this.random = random;
    this.current = plan.initialLimit;
    this.windowStart = now;
    this.measuring = { since: now, samples: [] };
  }

  /** `current` is kept fractional so that small smoothed steps add up; calls are whole. */
  get limit(): number {
    return this.measuring ? this.plan.minLimit : Math.max(this.plan.minLimit, Math.round(this.current));
  }

  get minRttMs(): number | undefined {
    return this.minRtt;
  }

  onSample(now: number, rttMs: number, startedAt: number, overloaded: boolean): void {
    const m = this.measuring;
    if (m) {
      // Only calls admitted at the pinned concurrency tell the no-load latency.
      if (startedAt < m.since) return;
      m.samples.push(rttMs);
      if (m.samples.length < this.plan.minRttSamples) return;
      this.minRtt = Math.max(0.001, percentile(m.samples, 0.5));
      this.measuring = undefined;
      this.nextMeasure = now + this.plan.minRttIntervalMs * (0.9 + 0.2 * this.random());
      this.startWindow(now);
      return;
    }
    if (startedAt < this.windowStart - this.plan.sampleWindowMs) return; // admitted under an older limit
    this.window.push(rttMs);
    if (overloaded) this.overloadedInWindow = true;
    if (now - this.windowStart < this.plan.sampleWindowMs) return;
    this.update();
    if (now >= this.nextMeasure || this.slowWindows >= SLOW_WINDOWS_TO_REMEASURE) {
      this.measuring = { since: now, samples: [] };
      this.slowWindows = 0;
    }
    this.startWindow(now);
  }

  private update(): void {
    const target = (this.minRtt as number) * (1 + this.plan.tolerance);
    const sample = percentile(this.window, SAMPLE_PERCENTILE);
    const gradient = Math.min(MAX_GRADIENT, Math.max(MIN_GRADIENT, target / Math.max(sample, 0.001)));
    // Only near minLimit: higher up, a slow window is queueing the next cuts will remove, and a
    // measure taken while the app still holds that queue would read the queue as service time.
    this.slowWindows = gradient === MIN_GRADIENT && this.current <= 2 * this.plan.minLimit + 1 ? this.slowWindows + 1 : 0;
    const scaled = this.current * gradient;
    let next = this.current * (1 - SMOOTHING) + (scaled + Math.sqrt(scaled)) * SMOOTHING;
    // The app saying "too busy" is not noise: that backs off at once.
    if (this.overloadedInWindow) next = Math.min(next, this.current * this.plan.backoff);
    this.current = Math.min(this.plan.maxLimit, Math.max(this.plan.minLimit, next));
  }

  private startWindow(now: number): void {
    this.windowStart = now;
    this.window = [];
    this.overloadedInWindow = false;
  }
}
