import type { AdaptiveConcurrencyPlan, PriorityPlan, TaskQueueAdaptivePlan, WarmUpPlan } from './adaptive.ts';
import type { FencingRule } from './fencing.ts';
import type { Matcher } from './match.ts';
import type { UpstreamPlan } from './upstream.ts';
import type { SluiceResource } from './resource.ts';
import type {
  Algorithm, ConnectionKeySource, FailureMode, KeySource, Mode, Protocol,
  RateLimitRuleSpec, CircuitBreakerRuleSpec, TaskQueueSpec, LeaderElectionSpec,
} from './types.ts';

/**
 * The compiled, frozen form of a set of resources: what a sidecar enforces. Built once per config
 * version by compilePlan(); the request path only reads it. Every rule carries `id`
 * (`namespace/policy/rule`), the name it has in metrics, logs and Redis keys.
 */
export interface Plan {
  readonly version: string;
  readonly rateLimits: readonly RateLimitRule[];
  readonly breakers: readonly BreakerRule[];
  readonly taskQueues: readonly TaskQueuePlan[];
  readonly leaderElections: readonly LeaderElectionPlan[];
  /** FencingPolicy rules: requests whose fencing token must be the newest for a lease or lock. */
  readonly fencing: readonly FencingRule[];
  /** The Upstreams whose selector matches the pod: the outbound listeners its sidecar serves. */
  readonly upstreams: readonly UpstreamPlan[];
  /** The resources this plan was compiled from (after selector filtering), for /config. */
  readonly resources: readonly SluiceResource[];
  /**
   * TaskQueues the app may produce to without being selected by them: producers are rarely the
   * workers (which ones: producible.ts). Standalone, compilePlan() lists those of the file the
   * pod's labels do not select; in operator mode the policy store adds the snapshot's. Producing
   * only — consumption follows `taskQueues`; read both through producibleTaskQueues().
   */
  readonly producibleTaskQueues?: readonly TaskQueuePlan[];
  /** What a skew-tolerant compile left out (unknown kinds, unknown fields), one line each. */
  readonly warnings?: readonly string[];
}

interface RuleBase {
  readonly id: string;
  readonly policy: string;
  readonly name: string;
  readonly mode: Mode;
  readonly protocol: Protocol | undefined;
  readonly matches: Matcher;
}

export interface LimitSpec {
  readonly algorithm: Algorithm;
  readonly requests: number;
  readonly perMs: number;
  /** Bucket capacity for TokenBucket (defaults to `requests`); equals `requests` for SlidingWindow. */
  readonly burst: number;
  /** A cold limit ramps from requests / coldFactor to requests over periodMs. */
  readonly warmUp?: WarmUpPlan;
}

export interface RateLimitRule extends RuleBase {
  readonly limit: LimitSpec | undefined;
  readonly key: { readonly source: KeySource; readonly name: string | undefined };
  readonly scope: 'Local' | 'Global';
  readonly failureMode: FailureMode;
  readonly priority?: PriorityPlan;
  readonly websocket: {
    readonly maxConnections: number | undefined;
    readonly connectionsPerSecond: number | undefined;
    readonly messagesPerSecond: number | undefined;
    readonly maxMessageBytes: number | undefined;
    /** With `connectionKey`: open connections per key, counted per sidecar or (scope Global) in Redis. */
    readonly maxConnectionsPerKey: number | undefined;
    readonly connectionKey: { readonly source: ConnectionKeySource; readonly name: string | undefined } | undefined;
  } | undefined;
  readonly source: RateLimitRuleSpec;
}

export interface BreakerRule extends RuleBase {
  readonly failure: {
    /** Index by HTTP status (0..599): 1 when that status counts as a failure. */
    readonly httpStatuses: Uint8Array;
    /** Index by gRPC status code (0..16). */
    readonly grpcCodes: Uint8Array;
    readonly timeoutMs: number | undefined;
    readonly connectErrors: boolean;
  };
  readonly trip: {
    readonly consecutiveFailures: number | undefined;
    readonly failureRatePercent: number | undefined;
    readonly slowCallMs: number | undefined;
    readonly slowCallRatePercent: number | undefined;
    readonly minimumRequests: number;
    readonly windowMs: number;
  };
  readonly openMs: number;
  readonly maxOpenMs: number;
  readonly halfOpen: { readonly maxProbes: number; readonly successesToClose: number };
  readonly bulkhead: { readonly maxConcurrent: number; readonly maxPending: number; readonly maxPendingWaitMs: number } | undefined;
  readonly adaptiveConcurrency?: AdaptiveConcurrencyPlan;
  readonly priority?: PriorityPlan;
  readonly source: CircuitBreakerRuleSpec;
}

/** A TaskQueue's autoscaling with its defaults applied: what the operator's TaskQueue reconciler reads. */
export interface AutoscalePlan {
  readonly scaleTargetRef: { readonly apiVersion: string; readonly kind: string; readonly name: string };
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly targetLagPerReplica: number;
  readonly stabilizationWindowMs: number;
}

export interface TaskQueuePlan {
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  readonly stream: string;
  readonly group: string;
  readonly delivery: {
    readonly protocol: 'http' | 'grpc';
    readonly path: string | undefined;
    readonly method: string | undefined;
    readonly timeoutMs: number;
    readonly batchSize: number;
  };
  readonly concurrency: number;
  /** When set, `concurrency` is only where the adaptive limit starts. */
  readonly adaptiveConcurrency?: TaskQueueAdaptivePlan;
  readonly rateLimit: { readonly requests: number; readonly perMs: number } | undefined;
  readonly retry: {
    readonly maxAttempts: number;
    readonly initialMs: number;
    readonly maxMs: number;
    readonly multiplier: number;
    /** Index by HTTP status: 1 when the app's answer means "permanent failure, don't retry". */
    readonly permanentStatuses: Uint8Array;
  };
  readonly deadLetterStream: string | undefined;
  /** Dead letters kept at most (oldest removed first); undefined = no bound. */
  readonly deadLetterMaxLen: number | undefined;
  /** Dead letters older than this (ms since dead-lettered) are removed; undefined = no bound. */
  readonly deadLetterMaxAgeMs: number | undefined;
  readonly visibilityTimeoutMs: number;
  readonly maxLen: number | undefined;
  readonly autoscale: AutoscalePlan | undefined;
  readonly deletionPolicy: 'Retain' | 'Delete';
  readonly durability: 'Async' | 'Replicated';
  /** How long an enqueue waits for a replica to have it (durability Replicated). */
  readonly replicationTimeoutMs: number;
  readonly source: TaskQueueSpec;
}

export interface LeaderElectionPlan {
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  readonly ttlMs: number;
  readonly renewEveryMs: number;
  readonly source: LeaderElectionSpec;
}
