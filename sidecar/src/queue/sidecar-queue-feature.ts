import type { Registry } from 'prom-client';
import type { Clock } from '../../../lib/clock.ts';
import type { CallOutcome, PolicyEngine } from '../policy-engine/engine.ts';
import type { RequestAttributes } from '../../../lib/policy/match.ts';
import type { Plan, TaskQueuePlan } from '../../../lib/policy/plan.ts';
import { producibleTaskQueues } from '../../../lib/policy/producible.ts';
import type { Logger } from '../../../lib/log.ts';
import type { Feature } from '../feature.ts';
import { QueueFeature } from './queue-feature.ts';

/**
 * Fits the QueueFeature into the sidecar's Feature interface, with what the sidecar knows and the
 * queue needs: whether the worker's circuit is open for a queue's delivery (the policy engine's
 * breakers).
 */
export function createSidecarQueueFeature(opts: {
  redisUrl: string;
  consumerName: string;
  registry: Registry;
  clock: Clock;
  logger: Logger;
  appHttp: string | undefined;
  appGrpc: string | undefined;
  /** The worker's breakers: an open circuit pauses delivery, and delivery results feed them (deliveries bypass the inbound listeners). */
  breakers: Pick<PolicyEngine, 'circuitOpen' | 'recordOutcome'>;
}): Feature & { readonly queue: QueueFeature } {
  const queue = new QueueFeature({
    redisUrl: opts.redisUrl,
    consumerName: opts.consumerName,
    registry: opts.registry,
    clock: opts.clock,
    logger: opts.logger,
    appHttp: opts.appHttp,
    appGrpc: opts.appGrpc,
    circuit: {
      isOpen: (q) => opts.breakers.circuitOpen(deliveryAttributes(q)),
      onResult: (q, r) => {
        if (r.reason === 'aborted') return; // our own drain, not the app's fault
        const outcome: CallOutcome = r.ok ? { status: r.status ?? 200 } : r.reason === 'timeout' ? { timedOut: true } : r.status !== undefined ? { status: r.status } : { connectError: true };
        opts.breakers.recordOutcome(deliveryAttributes(q), outcome, r.durationMs);
      },
    },
  });
  let usesRedis = false;
  return {
    name: 'queue',
    queue,
    applyPlan: (plan: Plan) => {
      usesRedis = producibleTaskQueues(plan).length > 0;
      return queue.applyPlan(plan);
    },
    routes: () => queue.routes(),
    // Ready once Redis has been reached at all; a later outage pauses the queue but must not take
    // the pod out of its Services (it may serve other traffic), so it does not flip readiness back.
    // With no TaskQueue to consume or produce to, Redis is not needed and does not gate readiness.
    readiness: () => ({ name: 'queue', check: () => ({ ok: queue.connectedOnce || !usesRedis, details: queue.status() }) }),
    status: () => queue.status(),
    close: async (graceMs: number) => {
      await queue.drain(graceMs);
      await queue.close();
    },
  };
}

/** The request a delivery is, as CircuitBreakerPolicy rules match it. */
function deliveryAttributes(q: TaskQueuePlan): RequestAttributes {
  return {
    protocol: q.delivery.protocol,
    method: 'POST',
    path: q.delivery.path ?? (q.delivery.method ? `/${q.delivery.method}` : '/'),
    grpcMethod: q.delivery.method,
    header: () => undefined,
  };
}
