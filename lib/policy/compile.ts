import { createHash } from 'node:crypto';
import { parseDuration } from './duration.ts';
import { PolicyValidationError, type Issue } from './errors.ts';
import { adaptiveStart, compileAdaptiveConcurrency, compilePriority, compileTaskQueueAdaptive, compileWarmUp } from './adaptive.ts';
import { compileFencingPolicy } from './fencing.ts';
import { compileMatch } from './match.ts';
import { mayProduceTo } from './producible.ts';
import { selectorMatches } from './selector.ts';
import type { SluiceResource } from './resource.ts';
import { GRPC_CODES, resourceKey, type RateLimitPolicy, type CircuitBreakerPolicy, type TaskQueue, type LeaderElection } from './types.ts';
import { isUnknownKind } from './skew.ts';
import { validateResource } from './validate.ts';
import { compileUpstream, upstreamClashes } from './upstream.ts';
import type { AutoscalePlan, BreakerRule, LeaderElectionPlan, Plan, RateLimitRule, TaskQueuePlan } from './plan.ts';

export interface CompileOptions {
  /** The pod's labels; when given, only resources whose selector matches them are compiled. */
  labels?: Readonly<Record<string, string>>;
  /** The version to stamp on the plan; by default a hash of the resources. */
  version?: string;
  /**
   * Documents from the operator (see skew.ts): a kind this version does not know is left out and
   * an unknown field ignored, each with a warning in `plan.warnings`, instead of refusing the set.
   */
  tolerateSkew?: boolean;
}

/**
 * Validates every document and compiles them into one frozen Plan. All or nothing: if any
 * document is invalid the whole set is refused (with every issue, each prefixed by the resource
 * it belongs to), so a sidecar never enforces half of a config.
 */
export function compilePlan(docs: readonly unknown[], opts: CompileOptions = {}): Plan {
  const issues: Issue[] = [];
  const resources: SluiceResource[] = [];
  const warnings: Issue[] = [];
  const seen = new Set<string>();
  docs.forEach((doc, i) => {
    if (opts.tolerateSkew && isUnknownKind(doc)) {
      const o = doc as { kind: string; metadata?: { name?: unknown; namespace?: unknown } };
      warnings.push({ path: `${o.kind} ${String(o.metadata?.namespace ?? 'default')}/${String(o.metadata?.name ?? '?')}`, message: 'unknown kind, skipped (from a newer operator?)' });
      return;
    }
    try {
      const r = validateResource(doc, { tolerateUnknownFields: opts.tolerateSkew ?? false, warnings });
      const id = `${r.kind} ${resourceKey(r)}`;
      if (seen.has(id)) issues.push({ path: `${id}: metadata.name`, message: 'is declared twice' });
      seen.add(id);
      resources.push(r);
    } catch (err) {
      if (!(err instanceof PolicyValidationError)) throw err;
      const o = doc as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
      const subject = `${String(o?.kind ?? `document ${i + 1}`)} ${String(o?.metadata?.namespace ?? 'default')}/${String(o?.metadata?.name ?? '?')}`;
      for (const issue of err.issues) issues.push({ path: `${subject}: ${issue.path}`, message: issue.message });
    }
  });
  const selected = opts.labels ? resources.filter((r) => selectorMatches(r.spec.selector, opts.labels!)) : resources;
  issues.push(...upstreamClashes(selected.filter(isKind('Upstream'))));
  if (issues.length > 0) throw new PolicyValidationError('config', issues);

  const unselectedQueues = resources.filter(isKind('TaskQueue')).filter((q) => !selected.includes(q) && mayProduceTo({ namespace: q.metadata.namespace ?? 'default' }, undefined));
  const plan: Plan = {
    version: opts.version ?? hashResources(selected),
    rateLimits: selected.filter(isKind('RateLimitPolicy')).flatMap(compileRateLimits),
    breakers: selected.filter(isKind('CircuitBreakerPolicy')).flatMap(compileBreakers),
    taskQueues: selected.filter(isKind('TaskQueue')).map(compileTaskQueue),
    leaderElections: selected.filter(isKind('LeaderElection')).map(compileLeaderElection),
    fencing: selected.filter(isKind('FencingPolicy')).flatMap(compileFencingPolicy),
    upstreams: selected.filter(isKind('Upstream')).map(compileUpstream),
    resources: structuredClone(selected),
    ...(unselectedQueues.length > 0 ? { producibleTaskQueues: unselectedQueues.map(compileTaskQueue) } : {}),
    ...(warnings.length > 0 ? { warnings: warnings.map((w) => `${w.path}: ${w.message}`) } : {}),
  };
  return deepFreeze(plan);
}

/** An empty plan: what a sidecar enforces before its first config arrives. */
export function emptyPlan(version = 'none'): Plan {
  return compilePlan([], { version });
}

function isKind<K extends SluiceResource['kind']>(kind: K) {
  return (r: SluiceResource): r is Extract<SluiceResource, { kind: K }> => r.kind === kind;
}

const ms = (d: string | undefined, fallback: number): number => (d === undefined ? fallback : (parseDuration(d) as number));

function compileRateLimits(p: RateLimitPolicy): RateLimitRule[] {
  const policy = resourceKey(p);
  return p.spec.rules.map((r) => ({
    id: `${policy}/${r.name}`,
    policy,
    name: r.name,
    mode: p.spec.mode ?? 'Enforce',
    protocol: r.match?.protocol,
    matches: compileMatch(r.match, p.metadata.namespace ?? 'default'),
    limit: r.limit && {
      algorithm: r.limit.algorithm ?? 'TokenBucket',
      requests: r.limit.requests,
      perMs: ms(r.limit.per, 1000),
      burst: (r.limit.algorithm ?? 'TokenBucket') === 'TokenBucket' ? (r.limit.burst ?? r.limit.requests) : r.limit.requests,
      ...(r.limit.warmUp ? { warmUp: compileWarmUp(r.limit.warmUp) } : {}),
    },
    ...(r.priority ? { priority: compilePriority(r.priority) } : {}),
    key: { source: r.key?.source ?? 'None', name: r.key?.name?.toLowerCase() },
    scope: r.scope ?? 'Local',
    failureMode: r.failureMode ?? 'Open',
    websocket: r.websocket && {
      maxConnections: r.websocket.maxConnections,
      connectionsPerSecond: r.websocket.connectionsPerSecond,
      messagesPerSecond: r.websocket.messagesPerSecond,
      maxMessageBytes: r.websocket.maxMessageBytes,
      maxConnectionsPerKey: r.websocket.maxConnectionsPerKey,
      connectionKey: r.websocket.maxConnectionsPerKey === undefined ? undefined
        : { source: r.websocket.key?.source ?? 'RemoteAddress', name: r.websocket.key?.name?.toLowerCase() },
    },
    source: r,
  }));
}

/** The failures a breaker counts when a rule does not say: server errors and broken transport. */
const DEFAULT_HTTP_FAILURES = ['5xx'];
const DEFAULT_GRPC_FAILURES = ['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'INTERNAL', 'UNKNOWN', 'DATA_LOSS'];

export function statusTable(statuses: readonly (string | number)[]): Uint8Array {
  const table = new Uint8Array(600);
  for (const s of statuses.map(String)) {
    if (s.endsWith('xx')) table.fill(1, Number(s[0]) * 100, Number(s[0]) * 100 + 100);
    else table[Number(s)] = 1;
  }
  return table;
}

function compileBreakers(p: CircuitBreakerPolicy): BreakerRule[] {
  const policy = resourceKey(p);
  return p.spec.rules.map((r) => {
    const fc = r.failureConditions ?? {};
    const grpcCodes = new Uint8Array(GRPC_CODES.length);
    for (const name of fc.grpcCodes ?? DEFAULT_GRPC_FAILURES) grpcCodes[GRPC_CODES.indexOf(name as never)] = 1;
    const t = r.trip ?? {};
    const anyCondition = t.consecutiveFailures !== undefined || t.failureRatePercent !== undefined || t.slowCallRatePercent !== undefined;
    const openMs = ms(r.openDuration, 30_000);
    return {
      id: `${policy}/${r.name}`,
      policy,
      name: r.name,
      mode: p.spec.mode ?? 'Enforce',
      protocol: r.match?.protocol,
      matches: compileMatch(r.match, p.metadata.namespace ?? 'default'),
      failure: {
        httpStatuses: statusTable(fc.httpStatuses ?? DEFAULT_HTTP_FAILURES),
        grpcCodes,
        timeoutMs: fc.timeout === undefined ? undefined : ms(fc.timeout, 0),
        connectErrors: fc.connectErrors ?? true,
      },
      trip: {
        // A breaker with no trip condition at all would never open; five in a row is the usual default.
        consecutiveFailures: t.consecutiveFailures ?? (anyCondition ? undefined : 5),
        failureRatePercent: t.failureRatePercent,
        slowCallMs: t.slowCallDuration === undefined ? undefined : ms(t.slowCallDuration, 0),
        slowCallRatePercent: t.slowCallRatePercent,
        minimumRequests: t.minimumRequests ?? 10,
        windowMs: ms(t.window, 10_000),
      },
      openMs,
      maxOpenMs: Math.max(openMs, ms(r.maxOpenDuration, openMs)),
      halfOpen: { maxProbes: r.halfOpen?.maxProbes ?? 1, successesToClose: r.halfOpen?.successesToClose ?? 1 },
      bulkhead: r.bulkhead && {
        maxConcurrent: r.bulkhead.maxConcurrentRequests as number,
        maxPending: r.bulkhead.maxPendingRequests ?? 0,
        maxPendingWaitMs: ms(r.bulkhead.maxPendingWait, 1_000),
      },
      ...(r.adaptiveConcurrency ? { adaptiveConcurrency: compileAdaptiveConcurrency(r.adaptiveConcurrency) } : {}),
      ...(r.priority ? { priority: compilePriority(r.priority) } : {}),
      source: r,
    };
  });
}

function compileTaskQueue(q: TaskQueue): TaskQueuePlan {
  const s = q.spec;
  return {
    id: resourceKey(q),
    name: q.metadata.name,
    namespace: q.metadata.namespace ?? 'default',
    stream: s.stream,
    group: s.consumerGroup,
    delivery: {
      protocol: s.delivery.protocol ?? 'http',
      path: s.delivery.path,
      method: s.delivery.method,
      timeoutMs: ms(s.delivery.timeout, 30_000),
      batchSize: s.delivery.batchSize ?? 1,
    },
    concurrency: s.adaptiveConcurrency ? adaptiveStart(s.concurrency, s.adaptiveConcurrency) : (s.concurrency ?? 10),
    ...(s.adaptiveConcurrency ? { adaptiveConcurrency: compileTaskQueueAdaptive(s.adaptiveConcurrency) } : {}),
    rateLimit: s.rateLimit && { requests: s.rateLimit.requests, perMs: ms(s.rateLimit.per, 1000) },
    retry: {
      maxAttempts: s.retry?.maxAttempts ?? 3,
      initialMs: ms(s.retry?.backoff?.initial, 1_000),
      maxMs: ms(s.retry?.backoff?.max, 60_000),
      multiplier: s.retry?.backoff?.multiplier ?? 2,
      permanentStatuses: statusTable(s.retry?.permanentFailureStatuses ?? ['422']),
    },
    deadLetterStream: s.deadLetter?.stream,
    deadLetterMaxLen: s.deadLetter?.maxLen,
    deadLetterMaxAgeMs: s.deadLetter?.maxAge === undefined ? undefined : ms(s.deadLetter.maxAge, 0),
    visibilityTimeoutMs: ms(s.visibilityTimeout, 60_000),
    maxLen: s.retention?.maxLen,
    autoscale: s.autoscale && compileAutoscale(s.autoscale),
    deletionPolicy: s.deletionPolicy ?? 'Retain',
    durability: s.durability ?? 'Async',
    replicationTimeoutMs: ms(s.replicationTimeout, 1_000),
    source: s,
  };
}

/** How long scale-down recommendations are remembered before the highest is let go (as the HPA's default). */
const DEFAULT_STABILIZATION_WINDOW_MS = 5 * 60_000;

function compileAutoscale(a: NonNullable<TaskQueue['spec']['autoscale']>): AutoscalePlan {
  return {
    scaleTargetRef: { apiVersion: a.scaleTargetRef.apiVersion ?? 'apps/v1', kind: a.scaleTargetRef.kind, name: a.scaleTargetRef.name },
    minReplicas: a.minReplicas ?? 1,
    maxReplicas: a.maxReplicas,
    targetLagPerReplica: a.targetLagPerReplica,
    // A zero window keeps the default too: scaling down on every dip would flap the workers.
    stabilizationWindowMs: ms(a.stabilizationWindow, DEFAULT_STABILIZATION_WINDOW_MS) || DEFAULT_STABILIZATION_WINDOW_MS,
  };
}

function compileLeaderElection(l: LeaderElection): LeaderElectionPlan {
  return {
    id: resourceKey(l),
    name: l.metadata.name,
    namespace: l.metadata.namespace ?? 'default',
    ttlMs: ms(l.spec.ttl, 10_000),
    renewEveryMs: ms(l.spec.renewEvery, 3_000),
    source: l.spec,
  };
}

function hashResources(resources: readonly SluiceResource[]): string {
  const h = createHash('sha256');
  for (const r of resources) h.update(JSON.stringify([r.kind, r.metadata.namespace, r.metadata.name, r.spec]));
  return h.digest('hex').slice(0, 12);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value) && !ArrayBuffer.isView(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
