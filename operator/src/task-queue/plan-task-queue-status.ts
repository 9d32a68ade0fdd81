/**
 * A TaskQueue's own status — the queue's numbers and the Ready / Autoscaling conditions — from
 * what the reconciler observed in Redis and on the scale target. Pure: no I/O.
 */
import type { DesiredCondition } from '../conditions.ts';
import type { QueueStats } from './queue-redis.ts';
import { ConditionType, Reason } from '../reasons.ts';

export type RedisObservation =
  | { state: 'not-accepted' }
  | { state: 'not-configured' }
  | { state: 'unavailable'; error: string }
  | { state: 'ok'; stats: QueueStats };

export type ScaleObservation =
  | { state: 'disabled' }
  /** Not judged this round (no queue numbers to judge from). */
  | { state: 'unknown'; why: string }
  | { state: 'unsupported'; kind: string; apiVersion: string }
  | { state: 'not-found'; target: string }
  | { state: 'active'; target: string; replicas: number; message: string };

export interface TaskQueueStatusParts {
  conditions: DesiredCondition[];
  fields: Record<string, unknown>;
}

export function planTaskQueueStatus(stream: string, group: string, redis: RedisObservation, scale: ScaleObservation): TaskQueueStatusParts {
  const conditions: DesiredCondition[] = [readyCondition(stream, group, redis)];
  const fields: Record<string, unknown> = {};
  if (redis.state === 'ok') {
    const s = redis.stats;
    Object.assign(fields, {
      length: s.length,
      pending: s.pending ?? 0,
      lag: s.lag ?? 0,
      deadLetters: s.deadLetters ?? 0,
      waiting: s.waiting,
      consumers: s.consumers ?? 0,
    });
  }
  // While Redis is down the last numbers stay (they are the last known state); Ready says they are stale.
  const autoscaling = autoscalingCondition(scale);
  if (autoscaling) conditions.push(autoscaling);
  if (scale.state === 'active') fields.replicas = scale.replicas;
  return { conditions, fields };
}

function readyCondition(stream: string, group: string, redis: RedisObservation): DesiredCondition {
  const type = ConditionType.Ready;
  switch (redis.state) {
    case 'not-accepted':
      return { type, status: 'False', reason: Reason.NotAccepted, message: 'The spec is not accepted (see the Accepted condition); the stream is not managed.' };
    case 'not-configured':
      return { type, status: 'False', reason: Reason.RedisNotConfigured, message: 'The operator runs without --redis (chart value redis.url): it cannot ensure the stream or report the queue.' };
    case 'unavailable':
      return { type, status: 'False', reason: Reason.RedisUnavailable, message: `Redis did not answer: ${redis.error}. The numbers in status are the last ones read; retrying.` };
    case 'ok':
      return {
        type, status: 'True', reason: Reason.StreamReady,
        message: `Stream ${stream} and consumer group ${group} exist; ${redis.stats.consumers ?? 0} consumers.`,
      };
  }
}

function autoscalingCondition(scale: ScaleObservation): DesiredCondition | undefined {
  const type = ConditionType.Autoscaling;
  switch (scale.state) {
    case 'disabled':
      return undefined;
    case 'unknown':
      return { type, status: 'Unknown', reason: Reason.RedisUnavailable, message: `Not scaling: ${scale.why}.` };
    case 'unsupported':
      return {
        type, status: 'False', reason: Reason.ScaleTargetUnsupported,
        message: `spec.autoscale.scaleTargetRef: ${scale.apiVersion} ${scale.kind} is not a kind the operator scales (Deployment or StatefulSet of apps/v1).`,
      };
    case 'not-found':
      return { type, status: 'False', reason: Reason.ScaleTargetNotFound, message: `spec.autoscale.scaleTargetRef: ${scale.target} does not exist in this namespace.` };
    case 'active':
      return { type, status: 'True', reason: Reason.ScalingActive, message: `${scale.target}: ${scale.message}.` };
  }
}
