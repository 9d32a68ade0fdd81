/**
 * The Sluice API (group sluice.dev, version v1alpha1) as a user writes it. These shapes mirror the
 * CRDs in crds/ and examples/policies.yaml; validation (validate.ts) turns untrusted input
 * into these types, and compile.ts turns them into the frozen plan the sidecar enforces.
 */
import type { AdaptiveConcurrencySpec, PrioritySpec, TaskQueueAdaptiveSpec, WarmUpSpec } from './adaptive.ts';

export const API_GROUP = 'sluice.dev';
export const API_VERSION = 'sluice.dev/v1alpha1';

export type Kind = 'RateLimitPolicy' | 'CircuitBreakerPolicy' | 'TaskQueue' | 'LeaderElection' | 'FencingPolicy' | 'Upstream';
export const KINDS: readonly Kind[] = ['RateLimitPolicy', 'CircuitBreakerPolicy', 'TaskQueue', 'LeaderElection', 'FencingPolicy', 'Upstream'];

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  generation?: number;
  resourceVersion?: string;
  uid?: string;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export type Mode = 'Enforce' | 'DryRun';
export type Protocol = 'http' | 'grpc' | 'websocket';
export type PathMatchType = 'Exact' | 'Prefix' | 'RegularExpression';
export type HeaderMatchType = 'Exact' | 'RegularExpression' | 'Present';

export interface RouteMatch {
  protocol?: Protocol;
  methods?: string[];
  paths?: { type: PathMatchType; value: string }[];
  /** `pkg.Service/Method` or `pkg.Service/*`. */
  grpcMethods?: string[];
  headers?: { name: string; type?: HeaderMatchType; value?: string }[];
  /**
   * The name of an Upstream of the policy's namespace: the rule applies to the app's calls out
   * through it (client-side limits and breakers). Without it a rule applies to inbound traffic only.
   */
  upstream?: string;
}

export type Algorithm = 'TokenBucket' | 'SlidingWindow';
export type KeySource = 'None' | 'RemoteAddress' | 'Header' | 'GrpcMetadata' | 'Path';
export type Scope = 'Local' | 'Global';
export type FailureMode = 'Open' | 'Closed';

export interface RateLimitRuleSpec {
  name: string;
  match?: RouteMatch;
  limit?: { requests: number; per: string; burst?: number; algorithm?: Algorithm; warmUp?: WarmUpSpec };
  /** Lower levels are refused first as the limit fills; a share is kept for the highest. */
  priority?: PrioritySpec;
  key?: { source: KeySource; name?: string };
  scope?: Scope;
  failureMode?: FailureMode;
  websocket?: {
    maxConnections?: number;
    connectionsPerSecond?: number;
    messagesPerSecond?: number;
    maxMessageBytes?: number;
    /** Open connections per key value (client address or header); shared through Redis with scope Global. */
    maxConnectionsPerKey?: number;
    /** What maxConnectionsPerKey counts by (default RemoteAddress). */
    key?: { source: ConnectionKeySource; name?: string };
  };
}

/** The key sources a connection quota can count by: the WebSocket upgrade has no gRPC metadata or useful path. */
export type ConnectionKeySource = 'RemoteAddress' | 'Header';

export interface RateLimitPolicySpec {
  selector: LabelSelector;
  mode?: Mode;
  rules: RateLimitRuleSpec[];
}

export const GRPC_CODES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE',
  'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
] as const;
export type GrpcCodeName = (typeof GRPC_CODES)[number];

export interface CircuitBreakerRuleSpec {
  name: string;
  match?: RouteMatch;
  failureConditions?: {
    /** "5xx", "4xx", or an exact status such as "503". */
    httpStatuses?: string[];
    grpcCodes?: GrpcCodeName[];
    /** A call slower than this fails and is answered 504 / DEADLINE_EXCEEDED. */
    timeout?: string;
    /** Connection refused/reset to the app counts as failure (default true). */
    connectErrors?: boolean;
  };
  trip?: {
    consecutiveFailures?: number;
    failureRatePercent?: number;
    slowCallDuration?: string;
    slowCallRatePercent?: number;
    minimumRequests?: number;
    window?: string;
  };
  openDuration?: string;
  maxOpenDuration?: string;
  halfOpen?: { maxProbes?: number; successesToClose?: number };
  bulkhead?: { maxConcurrentRequests?: number; maxPendingRequests?: number; maxPendingWait?: string };
  /** The concurrency limit follows the app's latency; the smaller of it and the bulkhead wins. */
  adaptiveConcurrency?: AdaptiveConcurrencySpec;
  priority?: PrioritySpec;
}

export interface CircuitBreakerPolicySpec {
  selector: LabelSelector;
  mode?: Mode;
  rules: CircuitBreakerRuleSpec[];
}

export interface TaskQueueSpec {
  selector: LabelSelector;
  stream: string;
  consumerGroup: string;
  delivery: { protocol?: 'http' | 'grpc'; path?: string; method?: string; timeout?: string; batchSize?: number };
  concurrency?: number;
  /** Deliveries in flight per pod follow the worker's latency and overload answers, between min and max. */
  adaptiveConcurrency?: TaskQueueAdaptiveSpec;
  rateLimit?: { requests: number; per: string };
  retry?: {
    maxAttempts?: number;
    backoff?: { initial?: string; max?: string; multiplier?: number };
    /** App answers that mean "permanent failure, don't retry" (default ["422"]). */
    permanentFailureStatuses?: string[];
  };
  /** maxLen / maxAge bound the dead letters kept (oldest removed first). */
  deadLetter?: { stream: string; maxLen?: number; maxAge?: string };
  visibilityTimeout?: string;
  retention?: { maxLen?: number };
  autoscale?: {
    scaleTargetRef: { apiVersion?: string; kind: string; name: string };
    minReplicas?: number;
    maxReplicas: number;
    targetLagPerReplica: number;
    stabilizationWindow?: string;
  };
  deletionPolicy?: 'Retain' | 'Delete';
  /**
   * `Replicated`: an enqueue is confirmed only once a replica of the queue's Redis master has it
   * (WAIT), within `replicationTimeout`. `Async` (default): confirmed when the master has it.
   */
  durability?: 'Async' | 'Replicated';
  replicationTimeout?: string;
}

export interface LeaderElectionSpec {
  selector: LabelSelector;
  ttl: string;
  renewEvery: string;
}

interface Resource<K extends Kind, S> {
  apiVersion: typeof API_VERSION;
  kind: K;
  metadata: ObjectMeta;
  spec: S;
}

export type RateLimitPolicy = Resource<'RateLimitPolicy', RateLimitPolicySpec>;
export type CircuitBreakerPolicy = Resource<'CircuitBreakerPolicy', CircuitBreakerPolicySpec>;
export type TaskQueue = Resource<'TaskQueue', TaskQueueSpec>;
export type LeaderElection = Resource<'LeaderElection', LeaderElectionSpec>;

/** `namespace/name`, the key resources are known by in logs, metrics and Redis keys. */
export function resourceKey(r: { metadata: ObjectMeta }): string {
  return `${r.metadata.namespace ?? 'default'}/${r.metadata.name}`;
}
