/**
 * Every condition type and reason the operator writes, in one place: reasons are API (users
 * alert on them, `kubectl wait --for=condition=...` scripts read them), so they are CamelCase
 * constants that never change spelling.
 */
export const ConditionType = {
  /** The spec is valid and does not conflict with another policy; it is part of the snapshots. */
  Accepted: 'Accepted',
  /** Every selected pod's sidecar acknowledged a snapshot containing this generation. */
  Programmed: 'Programmed',
} as const;
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];

export const Reason = {
  // Accepted
  Accepted: 'Accepted',
  Invalid: 'Invalid',
  Conflicted: 'Conflicted',
  // Programmed
  Programmed: 'Programmed',
  Pending: 'Pending',
  Rejected: 'Rejected',
  NoTargets: 'NoTargets',
  NotAccepted: 'NotAccepted',
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];
