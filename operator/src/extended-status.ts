/**
 * Status for the kinds whose reconciler does more than Accepted/Programmed (TaskQueue,
 * LeaderElection): the shared base (planPolicyStatus: Accepted, Programmed, targets) plus the
 * kind's own fields and conditions, merged into one status written by one reconciler — two
 * writers of one `conditions` list would overwrite each other's conditions.
 * Pure: no I/O.
 */
import { setConditions, transitions, type DesiredCondition, type Transition } from './conditions.ts';
import { planPolicyStatus, type PolicyStatus, type StatusInput } from './policy/plan-policy-status.ts';

export type ExtendedStatus = PolicyStatus & Record<string, unknown>;

export interface ExtendedPlan {
  /** The status to write (a merge patch: a field set to null is removed). */
  status: ExtendedStatus;
  transitions: Transition[];
  changed: boolean;
}

export interface ExtendedInput extends StatusInput {
  existing: (Partial<PolicyStatus> & Record<string, unknown>) | undefined;
  /** The kind's own conditions (set after Accepted and Programmed). */
  conditions: readonly DesiredCondition[];
  /** The kind's own fields; null removes a field. Fields not named here are left as they are. */
  fields: Record<string, unknown>;
}

export function planExtendedStatus(input: ExtendedInput): ExtendedPlan {
  const base = planPolicyStatus(input).status;
  const status: ExtendedStatus = {
    ...base,
    ...input.fields,
    conditions: setConditions(base.conditions, input.conditions, input.generation, input.now),
  };
  const existing = input.existing;
  const changed = !existing || Object.keys(status).some((k) => !sameValue(existing[k], status[k]));
  return { status, transitions: changed ? transitions(existing?.conditions, status.conditions) : [], changed };
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}
