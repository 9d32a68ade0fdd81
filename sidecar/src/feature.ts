import type { Plan } from '../../lib/policy/plan.ts';
import type { RedisHealth } from '../../lib/redis/connection.ts';
import type { ReadinessCheck } from './admin/admin-server.ts';
import type { Route } from './local-api/router.ts';

/**
 * A part of the sidecar that follows the plan: queues, leadership, global limits, outbound, the
 * operator stream. The sidecar holds each by name for what only it offers and runs them all
 * through this one contract: each gets every new plan, may serve routes on the local API, reports
 * readiness and status, and is closed on shutdown.
 */
export interface Feature {
  readonly name: string;
  applyPlan?(plan: Plan): void | Promise<void>;
  routes?(): Route[];
  readiness?(): ReadinessCheck;
  status?(): unknown;
  /** Redis connections this feature holds, for `sluice_redis_up`. */
  redisHealths?(): readonly RedisHealth[];
  close?(graceMs: number): Promise<void>;
}
