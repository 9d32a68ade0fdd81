/**
 * The status planner shared by the policy reconcilers: observed state in, status out, no I/O.
 * Accepted comes from the verdict (validation + conflicts); Programmed and targets come from
 * what the selected pods' sidecars acknowledged, so `kubectl get` reports what is actually
 * enforced, not what was merely sent.
 */
import type { Verdict } from '../accept-policies.ts';
import { setConditions, transitions, type Condition, type DesiredCondition, type Transition } from '../conditions.ts';
import type { PodProgramState } from '../programming-tracker.ts';
import { ConditionType, Reason } from '../reasons.ts';

export interface PolicyStatus {
  observedGeneration: number;
  conditions: Condition[];
  targets: { selected: number; programmed: number };
}

export interface StatusInput {
  generation: number;
  existing: Partial<PolicyStatus> | undefined;
  verdict: Verdict;
  /** Every target pod (alive, with a sidecar) the spec selects, and its sidecar's state. */
  targets: readonly { pod: string; state: PodProgramState }[];
  now: string;
}

export interface StatusPlan {
  status: PolicyStatus;
  /** Condition changes worth an Event. */
  transitions: Transition[];
  /** False when the status already says exactly this: no write needed. */
  changed: boolean;
}

/** How many pod names a message lists before it says "and N more". */
const LIST = 3;

export function planPolicyStatus(input: StatusInput): StatusPlan {
  const { verdict, targets, generation } = input;
  const accepted: DesiredCondition = verdict.accepted
    ? { type: ConditionType.Accepted, status: 'True', reason: Reason.Accepted, message: `Generation ${generation} is valid and part of the selected pods' snapshots.` }
    : { type: ConditionType.Accepted, status: 'False', reason: verdict.reason, message: verdict.message };
  const programmedCount = targets.filter((t) => t.state.state === 'programmed').length;
  const status: PolicyStatus = {
    observedGeneration: generation,
    conditions: setConditions(input.existing?.conditions, [accepted, programmedCondition(input, programmedCount)], generation, input.now),
    targets: { selected: targets.length, programmed: programmedCount },
  };
  const changed = !sameStatus(input.existing, status);
  return { status, transitions: changed ? transitions(input.existing?.conditions, status.conditions) : [], changed };
}

function programmedCondition({ verdict, targets, generation }: StatusInput, programmed: number): DesiredCondition {
  const type = ConditionType.Programmed;
  if (!verdict.accepted) {
    return { type, status: 'False', reason: Reason.NotAccepted, message: `Generation ${generation} is not accepted (see the Accepted condition), so no sidecar was sent it.` };
  }
  if (targets.length === 0) {
    return { type, status: 'False', reason: Reason.NoTargets, message: 'No running pod with the Sluice sidecar matches spec.selector in this namespace; check the selector and that the pods are injected.' };
  }
  const rejected = targets.flatMap((t) => (t.state.state === 'rejected' ? [{ pod: t.pod, error: t.state.error }] : []));
  if (rejected.length > 0) {
    const first = rejected[0] as { pod: string; error: string };
    return {
      type, status: 'False', reason: Reason.Rejected,
      message: `${rejected.length} of ${targets.length} sidecars refused generation ${generation} and keep enforcing their previous snapshot; `
        + `pod ${first.pod} said: ${first.error}`,
    };
  }
  const failed = targets.flatMap((t) => (t.state.state === 'failed' ? [{ pod: t.pod, error: t.state.error }] : []));
  if (failed.length > 0) {
    const first = failed[0] as { pod: string; error: string };
    return {
      type, status: 'False', reason: Reason.Rejected,
      message: `${failed.length} of ${targets.length} sidecars took generation ${generation} but could not put it in place; `
        + `pod ${first.pod} said: ${first.error}`,
    };
  }
  if (programmed === targets.length) {
    return {
      type, status: 'True', reason: Reason.Programmed,
      message: targets.length === 1 ? `The selected pod enforces generation ${generation}.` : `All ${targets.length} selected pods enforce generation ${generation}.`,
    };
  }
  const waiting = targets.filter((t) => t.state.state !== 'programmed');
  const names = waiting.slice(0, LIST).map((t) => `${t.pod}${t.state.state === 'disconnected' ? ' (sidecar not connected)' : ''}`);
  const more = waiting.length > LIST ? ` and ${waiting.length - LIST} more` : '';
  return {
    type, status: 'False', reason: Reason.Pending,
    message: `${programmed} of ${targets.length} selected pods enforce generation ${generation}; waiting for ${names.join(', ')}${more}.`,
  };
}

function sameStatus(a: Partial<PolicyStatus> | undefined, b: PolicyStatus): boolean {
  if (!a) return false;
  return JSON.stringify([a.observedGeneration, a.targets?.selected, a.targets?.programmed, a.conditions?.map(strip)])
    === JSON.stringify([b.observedGeneration, b.targets.selected, b.targets.programmed, b.conditions.map(strip)]);
}

const strip = (c: Condition) => [c.type, c.status, c.reason, c.message, c.observedGeneration, c.lastTransitionTime];
