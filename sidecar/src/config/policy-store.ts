import type { Plan } from '../../../lib/policy/plan.ts';
import { emptyPlan } from '../../../lib/policy/compile.ts';

export type PlanListener = (plan: Plan) => void;

export interface Rejected {
  version: string | undefined;
  reason: string;
  at: string;
}

/**
 * Holds the plan in force and replaces it whole. A rejected update never touches the current plan
 * (last known good); its reason is kept for /config and for the NACK to the operator.
 */
export class PolicyStore {
  private plan: Plan = emptyPlan();
  private listeners: PlanListener[] = [];
  source = 'none';
  appliedAt: string | undefined;
  lastRejected: Rejected | undefined;
  loaded = false;

  get current(): Plan {
    return this.plan;
  }

  subscribe(listener: PlanListener): void {
    this.listeners.push(listener);
  }

  apply(plan: Plan, source: string): void {
    this.plan = plan;
    this.source = source;
    this.loaded = true;
    this.appliedAt = new Date().toISOString();
    for (const l of this.listeners) l(plan);
  }

  reject(version: string | undefined, reason: string): void {
    this.lastRejected = { version, reason, at: new Date().toISOString() };
  }
}
