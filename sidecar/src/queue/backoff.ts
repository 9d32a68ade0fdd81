import type { TaskQueuePlan } from '../../../lib/policy/index.ts';

type RetryPlan = Pick<TaskQueuePlan['retry'], 'initialMs' | 'maxMs' | 'multiplier'>;

/** How much jitter is added above the floor: at most this fraction of the floor. */
export const JITTER_FRACTION = 0.1;

/**
 * The floor before attempt `failedAttempt + 1` may be delivered: initial × multiplier^(n−1),
 * capped at max. Exponential so a struggling app gets breathing room; capped so a task is never
 * parked for longer than the user said.
 */
export function backoffFloorMs(failedAttempt: number, retry: RetryPlan): number {
  if (!(failedAttempt >= 1)) throw new RangeError('backoff: attempts are counted from 1');
  const raw = retry.initialMs * retry.multiplier ** (failedAttempt - 1);
  return Math.min(retry.maxMs, raw);
}

/**
 * The delay actually scheduled: the floor plus up to 10% jitter, so tasks that failed together
 * (an app restart) do not all come back in the same millisecond. Never below the floor, which is
 * the promise "attempt n+1 is not delivered before backoff(n)".
 */
export function backoffDelayMs(failedAttempt: number, retry: RetryPlan, random: () => number = Math.random): number {
  const floor = backoffFloorMs(failedAttempt, retry);
  return Math.ceil(floor + floor * JITTER_FRACTION * random());
}
