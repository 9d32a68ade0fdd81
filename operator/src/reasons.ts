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
  // TaskQueue / LeaderElection reconcilers
  /** TaskQueue: the stream and consumer group exist in Redis and status reflects them. */
  Ready: 'Ready',
  /** TaskQueue with spec.autoscale: the scale target is found and scaled from the lag. */
  Autoscaling: 'Autoscaling',
  /** LeaderElection: a selected pod holds a valid lease and carries the leader label. */
  Elected: 'Elected',
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
  // Ready (TaskQueue)
  StreamReady: 'StreamReady',
  RedisUnavailable: 'RedisUnavailable',
  /** TaskQueue: the sluice.dev/redrive annotation started a dead-letter redrive (an Event). */
  RedriveStarted: 'RedriveStarted',
  /** TaskQueue: the sluice.dev/redrive annotation is not a redrive request (an Event). */
  RedriveInvalid: 'RedriveInvalid',
  RedisNotConfigured: 'RedisNotConfigured',
  // Autoscaling (TaskQueue) and its Events
  ScalingActive: 'ScalingActive',
  ScaleTargetNotFound: 'ScaleTargetNotFound',
  ScaleTargetUnsupported: 'ScaleTargetUnsupported',
  ScaledUp: 'ScaledUp',
  ScaledDown: 'ScaledDown',
  // deletionPolicy cleanup Event
  StreamDeleted: 'StreamDeleted',
  // Elected (LeaderElection) and its Events
  LeaderElected: 'LeaderElected',
  NoLeader: 'NoLeader',
  LeaderChanged: 'LeaderChanged',
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];
