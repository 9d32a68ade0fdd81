import type { DeliveryOutcome } from './retry-decision.ts';
import type { Task } from './task.ts';

/**
 * How tasks reach the app. One call may carry several tasks (`delivery.batchSize`); the answer is
 * one outcome per task, in order. `signal` aborts the call when the sidecar stops waiting (drain
 * cut-off); the deliverer applies `delivery.timeout` itself.
 */
export interface Deliverer {
  deliver(tasks: readonly Task[], signal: AbortSignal): Promise<DeliveryOutcome[]>;
  close(): Promise<void>;
}

/** Headers (HTTP) and metadata keys (gRPC) that tell the app what it is holding. */
export const TASK_HEADERS = {
  id: 'sluice-task-id',
  attempt: 'sluice-attempt',
  queue: 'sluice-queue',
  batchSize: 'sluice-batch-size',
  orderingKey: 'sluice-ordering-key',
} as const;

export function failed(reason: string, permanent = false, status?: number): DeliveryOutcome {
  return { ok: false, permanent, status, reason };
}
