import type { TaskQueuePlan } from '../../../lib/policy/index.ts';
import { backoffDelayMs } from './backoff.ts';

/** What one delivery of one task came to, as the deliverer saw it. */
export type DeliveryOutcome =
  | { readonly ok: true; readonly status: number | undefined }
  | {
      readonly ok: false;
      /** The app said "don't retry" (a permanent status such as 422, or gRPC INVALID_ARGUMENT). */
      readonly permanent: boolean;
      /** HTTP status, when the app answered at all. */
      readonly status: number | undefined;
      /** A short reason for logs and the dead-letter entry: `http 500`, `timeout`, `ECONNREFUSED`. */
      readonly reason: string;
    };

export type Settlement =
  | { readonly kind: 'ack' }
  | { readonly kind: 'retry'; readonly delayMs: number; readonly nextAttempt: number; readonly reason: string }
  | { readonly kind: 'dead'; readonly reason: string; readonly cause: 'permanent' | 'exhausted' };

/**
 * Turns an outcome into what happens to the task. Pure, so the whole retry policy is a table test:
 * success acks; a permanent failure dead-letters at once (retrying cannot help); otherwise retry
 * with backoff until `maxAttempts` deliveries have been made, then dead-letter.
 */
export function decideSettlement(
  outcome: DeliveryOutcome,
  attempt: number,
  retry: TaskQueuePlan['retry'],
  random?: () => number,
): Settlement {
  if (outcome.ok) return { kind: 'ack' };
  if (outcome.permanent) return { kind: 'dead', reason: outcome.reason, cause: 'permanent' };
  if (attempt >= retry.maxAttempts) return { kind: 'dead', reason: outcome.reason, cause: 'exhausted' };
  return { kind: 'retry', delayMs: backoffDelayMs(attempt, retry, random), nextAttempt: attempt + 1, reason: outcome.reason };
}

/** A reclaimed task whose crashed deliveries already used up its attempts goes straight to dead letter. */
export function isExhausted(attempt: number, retry: TaskQueuePlan['retry']): boolean {
  return attempt > retry.maxAttempts;
}
