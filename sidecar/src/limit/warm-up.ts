import type { WarmUpPlan } from '../../../lib/policy/adaptive.ts';

/**
 * Warm-up, as one number per partition: its coldness, 1 when cold and 0 when warm. A partition
 * starts cold. Time the limit spends in use warms it and time it spends unused cools it, both at
 * the rate 1 / `period`, so traffic that keeps the limit busy reaches the full rate after one
 * `period`, and a quiet spell of one `period` makes it cold again (Guava's SmoothWarmingUp stores
 * permits while idle and spends them while busy; this is that rule in continuous form).
 *
 * The admitted rate is the full rate times `factor(coldness)`: from 1 / coldFactor when cold to 1
 * when warm, linearly. What "in use" means is the algorithm's:
 *  - TokenBucket: the bucket is not full (the theoretical arrival time is in the future), i.e.
 *    demand has kept pace with the current refill rate;
 *  - SlidingWindow: the window's weighted count is at least `requests / coldFactor`, i.e. demand
 *    exceeds what a cold limit admits (Sentinel's WarmUp rule: below that rate it keeps cooling).
 * Under steady demand the TokenBucket settles where the bucket is in use half the time (a rate
 * about twice the demand, so a doubling is admitted at once); a SlidingWindow whose demand stays
 * below the cold limit stays cold, since it never needs more.
 */
export function nextColdness(cold: number, lastAt: number, now: number, busyUntil: number, periodMs: number): number {
  if (now <= lastAt) return cold;
  const busy = Math.max(0, Math.min(now, busyUntil) - lastAt);
  const idle = Math.max(0, now - Math.max(lastAt, busyUntil));
  const next = cold + (idle - busy) / periodMs;
  return next <= 0 ? 0 : next >= 1 ? 1 : next;
}

/** The share of the full rate admitted at a coldness: 1 / coldFactor (cold) … 1 (warm). */
export function warmFactor(cold: number, warmUp: WarmUpPlan): number {
  const floor = 1 / warmUp.coldFactor;
  return floor + (1 - floor) * (1 - cold);
}
