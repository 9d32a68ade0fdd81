import { Reason, type ConditionType } from './reasons.ts';

/** metav1.Condition as the API stores it. */
export interface Condition {
  type: ConditionType | string;
  status: 'True' | 'False' | 'Unknown';
  reason: Reason | string;
  message: string;
  observedGeneration: number;
  lastTransitionTime: string;
}

export type DesiredCondition = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

/**
 * The condition list after setting `desired`: keyed by type; lastTransitionTime moves only when
 * the status flips (that is what the field means — reasons and messages may change without a
 * transition). Conditions of other types are kept in their place.
 */
export function setConditions(
  existing: readonly Condition[] | undefined,
  desired: readonly DesiredCondition[],
  generation: number,
  now: string,
): Condition[] {
  const out = [...(existing ?? [])].map((c) => ({ ...c }));
  for (const d of desired) {
    const i = out.findIndex((c) => c.type === d.type);
    const prev = i >= 0 ? out[i] : undefined;
    const next: Condition = {
      ...d,
      observedGeneration: generation,
      lastTransitionTime: prev && prev.status === d.status ? prev.lastTransitionTime : now,
    };
    if (i >= 0) out[i] = next;
    else out.push(next);
  }
  return out;
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** A status or reason change of one condition: what deserves a Kubernetes Event. */
export interface Transition {
  type: string;
  status: Condition['status'];
  reason: string;
  message: string;
}

export function transitions(before: readonly Condition[] | undefined, after: readonly Condition[]): Transition[] {
  return after
    .filter((c) => {
      const prev = findCondition(before, c.type);
      return !prev || prev.status !== c.status || prev.reason !== c.reason;
    })
    .map(({ type, status, reason, message }) => ({ type, status, reason, message }));
}

/**
 * False, yet nothing for a person to act on: the change is still rolling out (Pending), nothing is
 * selected yet (NoTargets, as when policies are applied before their pods), or the cause was
 * already told as a Warning on Accepted (NotAccepted).
 */
const NORMAL_WHEN_FALSE = new Set<string>([Reason.Pending, Reason.NoTargets, Reason.NotAccepted]);

/**
 * The type of the Event a condition transition is told with, the same for every kind: Warning when
 * a condition turns False for a reason someone must act on (an invalid or conflicting spec, a
 * sidecar's NACK, Redis unreachable, a missing scale target, no leader), Normal otherwise.
 */
export function eventType(t: Transition): 'Warning' | 'Normal' {
  return t.status === 'False' && !NORMAL_WHEN_FALSE.has(t.reason) ? 'Warning' : 'Normal';
}
