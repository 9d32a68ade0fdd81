/**
 * How many replicas a TaskQueue's workers should run, from the queue's backlog: a pure function
 * of the observed backlog, the current replica count, the spec and the recommendations seen
 * recently, with time injected (no clock read here), so it is table-tested.
 *
 * Shaped like the HorizontalPodAutoscaler's behaviour with an upscale window of 0 and a downscale
 * stabilisation window:
 * - recommendation = clamp(ceil(backlog / targetLagPerReplica), minReplicas, maxReplicas);
 * - scale **up** at once to the recommendation (a growing backlog should not wait);
 * - scale **down** only to the highest recommendation seen within the window, so a queue that
 *   drains in bursts does not make the workers flap.
 */
export interface Recommendation {
  /** Monotonic milliseconds (Clock.now()). */
  readonly at: number;
  readonly replicas: number;
}

export interface AutoscaleSpec {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly targetLagPerReplica: number;
  readonly stabilizationWindowMs: number;
}

export interface AutoscaleInput {
  /** Tasks waiting for a worker: undelivered (lag) plus delivered but unacknowledged (pending). */
  readonly backlog: number;
  /** The workload's replicas now (its scale subresource's spec.replicas). */
  readonly currentReplicas: number;
  readonly spec: AutoscaleSpec;
  /** Earlier recommendations (any order; older than the window are dropped). */
  readonly history: readonly Recommendation[];
  readonly now: number;
}

export type ScaleDirection = 'up' | 'down' | 'none';

export interface AutoscaleDecision {
  /** What the scale subresource should say. Equal to currentReplicas when nothing is to be done. */
  readonly desiredReplicas: number;
  readonly direction: ScaleDirection;
  /** The raw recommendation of this round (before stabilisation). */
  readonly recommendation: number;
  /** The history to keep for the next round: within the window, including this round's. */
  readonly history: readonly Recommendation[];
  /** Why, for Events and logs. */
  readonly message: string;
}

export function recommendReplicas(backlog: number, spec: AutoscaleSpec): number {
  const raw = Math.ceil(Math.max(0, backlog) / spec.targetLagPerReplica);
  return clamp(raw, spec.minReplicas, spec.maxReplicas);
}

export function decideReplicas(input: AutoscaleInput): AutoscaleDecision {
  const { spec, now, currentReplicas, backlog } = input;
  if (!(spec.targetLagPerReplica > 0)) throw new RangeError('targetLagPerReplica must be > 0');
  if (spec.minReplicas > spec.maxReplicas) throw new RangeError('minReplicas must not exceed maxReplicas');
  const recommendation = recommendReplicas(backlog, spec);
  const windowStart = now - spec.stabilizationWindowMs;
  const history = [...input.history.filter((r) => r.at > windowStart && r.at <= now), { at: now, replicas: recommendation }];
  // Recommendations made under an older min/max still count, but within today's bounds.
  const highest = clamp(Math.max(...history.map((r) => r.replicas)), spec.minReplicas, spec.maxReplicas);
  const per = `${backlog} waiting tasks / ${spec.targetLagPerReplica} per replica`;
  if (recommendation > currentReplicas) {
    return { desiredReplicas: recommendation, direction: 'up', recommendation, history, message: `${per} → ${recommendation} replicas (was ${currentReplicas})` };
  }
  if (highest < currentReplicas) {
    return {
      desiredReplicas: highest, direction: 'down', recommendation, history,
      message: `${per} → ${recommendation}; highest recommendation within the stabilization window is ${highest} (was ${currentReplicas})`,
    };
  }
  const held = recommendation < currentReplicas ? `; held by a recommendation of ${highest} within the stabilization window` : '';
  return { desiredReplicas: currentReplicas, direction: 'none', recommendation, history, message: `${per} → ${recommendation}${held}` };
}

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, n));
}
