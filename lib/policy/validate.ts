import { Checker, join } from './checker.ts';
import { PolicyValidationError, type Issue } from './errors.ts';
import { checkAdaptiveConcurrency, checkPriority, checkTaskQueueAdaptive, checkWarmUp } from './adaptive.ts';
import { checkFencingPolicySpec } from './fencing.ts';
import { checkUpstreamSpec } from './upstream.ts';
import {
  API_VERSION, GRPC_CODES, KINDS,
  type CircuitBreakerPolicy, type Kind, type LabelSelector, type LeaderElection, type RateLimitPolicy,
  type RouteMatch, type TaskQueue,
} from './types.ts';
import type { SluiceResource } from './resource.ts';

type Obj = Record<string, unknown>;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const HTTP_METHOD = /^[A-Z]+$/;
const GRPC_METHOD = /^[A-Za-z_][\w.]*\.[A-Za-z_]\w*\/(\*|[A-Za-z_]\w*)$/;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HTTP_STATUS = /^([1-5]xx|[1-5][0-9][0-9])$/;
const STREAM_NAME = /^[^\s{}]+$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/**
 * Turns one untrusted document into a typed resource, or throws PolicyValidationError listing
 * every issue with its field path. The checks are those of the CRD schemas plus what a schema
 * cannot say (regular expressions compile, rule names unique, durations ordered).
 */
export function validateResource(doc: unknown, opts: { tolerateUnknownFields?: boolean; warnings?: Issue[] } = {}): SluiceResource {
  const c = new Checker({ tolerateUnknownFields: opts.tolerateUnknownFields ?? false });
  const root = c.object(doc, '', true);
  const kind = c.string(root?.kind, 'kind', { required: true, oneOf: KINDS }) as Kind | undefined;
  c.string(root?.apiVersion, 'apiVersion', { required: true, oneOf: [API_VERSION] });
  const meta = c.object(root?.metadata, 'metadata', true);
  const name = c.string(meta?.name, 'metadata.name', { required: true, pattern: DNS_SUBDOMAIN, maxLength: 253 });
  c.string(meta?.namespace, 'metadata.namespace', { pattern: DNS_LABEL, maxLength: 63 });
  const spec = c.object(root?.spec, 'spec', true);
  if (spec && kind) {
    if (kind === 'RateLimitPolicy') checkRateLimitSpec(c, spec);
    else if (kind === 'CircuitBreakerPolicy') checkCircuitBreakerSpec(c, spec);
    else if (kind === 'TaskQueue') checkTaskQueueSpec(c, spec);
    else if (kind === 'FencingPolicy') checkFencingPolicySpec(c, spec, { selector: checkSelector, match: checkMatch, rules: checkRules });
    else if (kind === 'Upstream') checkUpstreamSpec(c, spec, checkSelector);
    else checkLeaderElectionSpec(c, spec);
  }
  const subject = `${kind ?? 'resource'} ${meta?.namespace ?? 'default'}/${name ?? '?'}`;
  if (c.issues.length > 0) throw new PolicyValidationError(subject, c.issues);
  for (const w of c.warnings) opts.warnings?.push({ path: `${subject}: ${w.path}`, message: w.message });
  return doc as SluiceResource;
}

function checkSelector(c: Checker, v: unknown, path: string): LabelSelector | undefined {
  const sel = c.object(v, path, true);
  if (!sel) return undefined;
  c.known(sel, path, ['matchLabels', 'matchExpressions']);
  const labels = c.object(sel.matchLabels, join(path, 'matchLabels'));
  for (const [k, val] of Object.entries(labels ?? {})) {
    const p = join(join(path, 'matchLabels'), k);
    if (!LABEL_KEY.test(k)) c.fail(p, 'is not a valid label key');
    c.string(val, p, { required: true, pattern: LABEL_VALUE, maxLength: 63 });
  }
  const exprs = c.list(sel.matchExpressions, join(path, 'matchExpressions')) ?? [];
  exprs.forEach((e, i) => {
    const p = join(join(path, 'matchExpressions'), i);
    const o = c.object(e, p, true);
    c.known(o, p, ['key', 'operator', 'values']);
    c.string(o?.key, join(p, 'key'), { required: true, pattern: LABEL_KEY });
    const op = c.string(o?.operator, join(p, 'operator'), { required: true, oneOf: ['In', 'NotIn', 'Exists', 'DoesNotExist'] });
    const values = c.list(o?.values, join(p, 'values')) ?? [];
    values.forEach((x, j) => c.string(x, join(join(p, 'values'), j), { required: true }));
    if ((op === 'In' || op === 'NotIn') && values.length === 0) c.fail(join(p, 'values'), `must not be empty for operator ${op}`);
    if ((op === 'Exists' || op === 'DoesNotExist') && values.length > 0) c.fail(join(p, 'values'), `must be empty for operator ${op}`);
  });
  return sel as LabelSelector;
}

function checkMatch(c: Checker, v: unknown, path: string): RouteMatch | undefined {
  const m = c.object(v, path);
  if (!m) return undefined;
  c.known(m, path, ['protocol', 'methods', 'paths', 'grpcMethods', 'headers', 'upstream']);
  c.string(m.upstream, join(path, 'upstream'), { pattern: DNS_SUBDOMAIN, maxLength: 253 });
  const protocol = c.string(m.protocol, join(path, 'protocol'), { oneOf: ['http', 'grpc', 'websocket'] });
  (c.list(m.methods, join(path, 'methods')) ?? []).forEach((x, i) =>
    c.string(x, join(join(path, 'methods'), i), { required: true, pattern: HTTP_METHOD, maxLength: 32 }));
  (c.list(m.paths, join(path, 'paths')) ?? []).forEach((x, i) => {
    const p = join(join(path, 'paths'), i);
    const o = c.object(x, p, true);
    c.known(o, p, ['type', 'value']);
    const type = c.string(o?.type ?? 'Prefix', join(p, 'type'), { oneOf: ['Exact', 'Prefix', 'RegularExpression'] });
    const value = c.string(o?.value, join(p, 'value'), { required: true });
    if (type === 'RegularExpression') c.regex(value, join(p, 'value'));
    else if (value !== undefined && !value.startsWith('/')) c.fail(join(p, 'value'), `must start with "/" (got "${value}")`);
  });
  const grpc = c.list(m.grpcMethods, join(path, 'grpcMethods')) ?? [];
  grpc.forEach((x, i) => c.string(x, join(join(path, 'grpcMethods'), i), { required: true, pattern: GRPC_METHOD }));
  if (grpc.length > 0 && protocol !== 'grpc') c.fail(join(path, 'grpcMethods'), 'needs match.protocol: grpc');
  (c.list(m.headers, join(path, 'headers')) ?? []).forEach((x, i) => {
    const p = join(join(path, 'headers'), i);
    const o = c.object(x, p, true);
    c.known(o, p, ['name', 'type', 'value']);
    c.string(o?.name, join(p, 'name'), { required: true, pattern: HEADER_NAME });
    const type = c.string(o?.type ?? 'Exact', join(p, 'type'), { oneOf: ['Exact', 'RegularExpression', 'Present'] });
    const value = c.string(o?.value, join(p, 'value'), { required: type !== 'Present' });
    if (type === 'RegularExpression') c.regex(value, join(p, 'value'));
  });
  return m as RouteMatch;
}

function checkRules(c: Checker, spec: Obj, each: (rule: Obj, path: string) => void): void {
  const rules = c.list(spec.rules, 'spec.rules', { required: true, minItems: 1 }) ?? [];
  const seen = new Map<string, number>();
  rules.forEach((r, i) => {
    const path = join('spec.rules', i);
    const rule = c.object(r, path, true);
    if (!rule) return;
    const name = c.string(rule.name, join(path, 'name'), { required: true, pattern: DNS_LABEL, maxLength: 63 });
    if (name !== undefined) {
      const first = seen.get(name);
      if (first !== undefined) c.fail(join(path, 'name'), `"${name}" is already the name of spec.rules[${first}]; rule names must be unique`);
      else seen.set(name, i);
    }
    each(rule, path);
  });
}

function checkRateLimitSpec(c: Checker, spec: Obj): RateLimitPolicy['spec'] {
  c.known(spec, 'spec', ['selector', 'mode', 'rules']);
  checkSelector(c, spec.selector, 'spec.selector');
  c.string(spec.mode, 'spec.mode', { oneOf: ['Enforce', 'DryRun'] });
  checkRules(c, spec, (rule, path) => {
    c.known(rule, path, ['name', 'match', 'limit', 'key', 'scope', 'failureMode', 'websocket', 'priority']);
    const match = checkMatch(c, rule.match, join(path, 'match'));
    const limit = c.object(rule.limit, join(path, 'limit'));
    if (limit) {
      const lp = join(path, 'limit');
      c.known(limit, lp, ['requests', 'per', 'burst', 'algorithm', 'warmUp']);
      checkWarmUp(c, limit.warmUp, join(lp, 'warmUp'));
      const requests = c.integer(limit.requests, join(lp, 'requests'), { required: true, min: 1 });
      c.duration(limit.per, join(lp, 'per'), { required: true });
      const burst = c.integer(limit.burst, join(lp, 'burst'), { min: 1 });
      const algorithm = c.string(limit.algorithm, join(lp, 'algorithm'), { oneOf: ['TokenBucket', 'SlidingWindow'] });
      if (burst !== undefined && algorithm === 'SlidingWindow') c.fail(join(lp, 'burst'), 'applies to TokenBucket only; a SlidingWindow admits `requests` per window');
      if (burst !== undefined && requests !== undefined && burst < 1) c.fail(join(lp, 'burst'), 'must be at least 1');
    }
    const key = c.object(rule.key, join(path, 'key'));
    if (key) {
      const kp = join(path, 'key');
      c.known(key, kp, ['source', 'name']);
      const source = c.string(key.source, join(kp, 'source'), { required: true, oneOf: ['None', 'RemoteAddress', 'Header', 'GrpcMetadata', 'Path'] });
      const needsName = source === 'Header' || source === 'GrpcMetadata';
      const name = c.string(key.name, join(kp, 'name'), { required: needsName, pattern: HEADER_NAME });
      if (!needsName && name !== undefined) c.fail(join(kp, 'name'), `is only used with source Header or GrpcMetadata (source is ${source})`);
      if (source === 'GrpcMetadata' && match?.protocol !== 'grpc') c.fail(join(kp, 'source'), 'GrpcMetadata needs match.protocol: grpc');
    }
    const scope = c.string(rule.scope, join(path, 'scope'), { oneOf: ['Local', 'Global'] });
    c.string(rule.failureMode, join(path, 'failureMode'), { oneOf: ['Open', 'Closed'] });
    if (rule.failureMode !== undefined && scope !== 'Global') c.fail(join(path, 'failureMode'), 'only applies to scope: Global (a Local limit never depends on Redis)');
    const ws = c.object(rule.websocket, join(path, 'websocket'));
    if (ws) {
      const wp = join(path, 'websocket');
      c.known(ws, wp, ['maxConnections', 'connectionsPerSecond', 'messagesPerSecond', 'maxMessageBytes', 'maxConnectionsPerKey', 'key']);
      for (const f of ['maxConnections', 'connectionsPerSecond', 'messagesPerSecond', 'maxMessageBytes', 'maxConnectionsPerKey']) c.integer(ws[f], join(wp, f), { min: 1 });
      if (match?.protocol !== 'websocket') c.fail(wp, 'needs match.protocol: websocket');
      const perKey = ws.maxConnectionsPerKey !== undefined;
      const wsKey = c.object(ws.key, join(wp, 'key'));
      if (wsKey) {
        const kp = join(wp, 'key');
        c.known(wsKey, kp, ['source', 'name']);
        const source = c.string(wsKey.source ?? 'RemoteAddress', join(kp, 'source'), { oneOf: ['RemoteAddress', 'Header'] });
        const name = c.string(wsKey.name, join(kp, 'name'), { required: source === 'Header', pattern: HEADER_NAME });
        if (source === 'RemoteAddress' && name !== undefined) c.fail(join(kp, 'name'), 'is only used with source Header');
        if (!perKey) c.fail(kp, 'applies to maxConnectionsPerKey; set it, or remove key');
      }
      // Only the per-key quota can be shared: the other websocket limits count one sidecar's
      // connections or one connection's messages.
      if (scope === 'Global' && !perKey) c.fail(join(path, 'scope'), 'websocket limits are per sidecar except maxConnectionsPerKey; set websocket.maxConnectionsPerKey or use scope: Local');
    }
    checkPriority(c, rule.priority, join(path, 'priority'), match?.protocol);
    if (rule.priority !== undefined && !limit) c.fail(join(path, 'priority'), 'needs a limit to share out');
    if (!limit && !ws) c.fail(path, 'needs a limit, a websocket block, or both');
  });
  return spec as unknown as RateLimitPolicy['spec'];
}

function checkCircuitBreakerSpec(c: Checker, spec: Obj): CircuitBreakerPolicy['spec'] {
  c.known(spec, 'spec', ['selector', 'mode', 'rules']);
  checkSelector(c, spec.selector, 'spec.selector');
  c.string(spec.mode, 'spec.mode', { oneOf: ['Enforce', 'DryRun'] });
  checkRules(c, spec, (rule, path) => {
    c.known(rule, path, ['name', 'match', 'failureConditions', 'trip', 'openDuration', 'maxOpenDuration', 'halfOpen', 'bulkhead', 'adaptiveConcurrency', 'priority']);
    const match = checkMatch(c, rule.match, join(path, 'match'));
    checkAdaptiveConcurrency(c, rule.adaptiveConcurrency, join(path, 'adaptiveConcurrency'));
    checkPriority(c, rule.priority, join(path, 'priority'), match?.protocol);
    if (rule.priority !== undefined && rule.adaptiveConcurrency === undefined && rule.bulkhead === undefined) c.fail(join(path, 'priority'), 'needs adaptiveConcurrency or a bulkhead: it shares out their concurrency limit');
    const fc = c.object(rule.failureConditions, join(path, 'failureConditions'));
    if (fc) {
      const fp = join(path, 'failureConditions');
      c.known(fc, fp, ['httpStatuses', 'grpcCodes', 'timeout', 'connectErrors']);
      (c.list(fc.httpStatuses, join(fp, 'httpStatuses')) ?? []).forEach((x, i) =>
        c.string(typeof x === 'number' ? String(x) : x, join(join(fp, 'httpStatuses'), i), { required: true, pattern: HTTP_STATUS }));
      (c.list(fc.grpcCodes, join(fp, 'grpcCodes')) ?? []).forEach((x, i) =>
        c.string(x, join(join(fp, 'grpcCodes'), i), { required: true, oneOf: GRPC_CODES }));
      c.duration(fc.timeout, join(fp, 'timeout'));
      c.boolean(fc.connectErrors, join(fp, 'connectErrors'));
    }
    const trip = c.object(rule.trip, join(path, 'trip'));
    if (trip) {
      const tp = join(path, 'trip');
      c.known(trip, tp, ['consecutiveFailures', 'failureRatePercent', 'slowCallDuration', 'slowCallRatePercent', 'minimumRequests', 'window']);
      c.integer(trip.consecutiveFailures, join(tp, 'consecutiveFailures'), { min: 1 });
      c.number(trip.failureRatePercent, join(tp, 'failureRatePercent'), { min: 1, max: 100 });
      const slowDur = c.duration(trip.slowCallDuration, join(tp, 'slowCallDuration'));
      const slowRate = c.number(trip.slowCallRatePercent, join(tp, 'slowCallRatePercent'), { min: 1, max: 100 });
      if ((slowDur === undefined) !== (slowRate === undefined) && c.issues.length === 0) {
        c.fail(tp, 'slowCallDuration and slowCallRatePercent go together');
      }
      c.integer(trip.minimumRequests, join(tp, 'minimumRequests'), { min: 1 });
      c.duration(trip.window, join(tp, 'window'), { minMs: 100 });
    }
    const open = c.duration(rule.openDuration, join(path, 'openDuration'));
    const maxOpen = c.duration(rule.maxOpenDuration, join(path, 'maxOpenDuration'));
    if (maxOpen !== undefined && maxOpen < (open ?? 30_000)) c.fail(join(path, 'maxOpenDuration'), `must be at least openDuration (${String(rule.openDuration ?? '30s')})`);
    const half = c.object(rule.halfOpen, join(path, 'halfOpen'));
    c.known(half, join(path, 'halfOpen'), ['maxProbes', 'successesToClose']);
    c.integer(half?.maxProbes, join(path, 'halfOpen.maxProbes'), { min: 1 });
    c.integer(half?.successesToClose, join(path, 'halfOpen.successesToClose'), { min: 1 });
    const bh = c.object(rule.bulkhead, join(path, 'bulkhead'));
    c.known(bh, join(path, 'bulkhead'), ['maxConcurrentRequests', 'maxPendingRequests', 'maxPendingWait']);
    c.integer(bh?.maxConcurrentRequests, join(path, 'bulkhead.maxConcurrentRequests'), { min: 1 });
    c.integer(bh?.maxPendingRequests, join(path, 'bulkhead.maxPendingRequests'), { min: 0 });
    c.duration(bh?.maxPendingWait, join(path, 'bulkhead.maxPendingWait'));
    if (bh && bh.maxConcurrentRequests === undefined) c.fail(join(path, 'bulkhead.maxConcurrentRequests'), 'is required when a bulkhead is declared');
  });
  return spec as unknown as CircuitBreakerPolicy['spec'];
}

function checkTaskQueueSpec(c: Checker, spec: Obj): TaskQueue['spec'] {
  c.known(spec, 'spec', ['selector', 'stream', 'consumerGroup', 'delivery', 'concurrency', 'adaptiveConcurrency', 'rateLimit', 'retry', 'deadLetter', 'visibilityTimeout', 'retention', 'autoscale', 'deletionPolicy', 'durability', 'replicationTimeout']);
  checkSelector(c, spec.selector, 'spec.selector');
  const stream = c.string(spec.stream, 'spec.stream', { required: true, pattern: STREAM_NAME, maxLength: 200 });
  c.string(spec.consumerGroup, 'spec.consumerGroup', { required: true, pattern: STREAM_NAME, maxLength: 200 });
  const d = c.object(spec.delivery, 'spec.delivery', true);
  c.known(d, 'spec.delivery', ['protocol', 'path', 'method', 'timeout', 'batchSize']);
  const protocol = c.string(d?.protocol ?? 'http', 'spec.delivery.protocol', { oneOf: ['http', 'grpc'] });
  const dpath = c.string(d?.path, 'spec.delivery.path', { pattern: /^\// });
  const method = c.string(d?.method, 'spec.delivery.method', { pattern: GRPC_METHOD });
  if (d && protocol === 'http' && dpath === undefined) c.fail('spec.delivery.path', 'is required for protocol http');
  if (d && protocol === 'grpc' && method === undefined) c.fail('spec.delivery.method', 'is required for protocol grpc (pkg.Service/Method)');
  c.duration(d?.timeout, 'spec.delivery.timeout');
  c.integer(d?.batchSize, 'spec.delivery.batchSize', { min: 1, max: 1000 });
  c.integer(spec.concurrency, 'spec.concurrency', { min: 1, max: 10_000 });
  checkTaskQueueAdaptive(c, spec);
  const rl = c.object(spec.rateLimit, 'spec.rateLimit');
  c.known(rl, 'spec.rateLimit', ['requests', 'per']);
  if (rl) {
    c.integer(rl.requests, 'spec.rateLimit.requests', { required: true, min: 1 });
    c.duration(rl.per, 'spec.rateLimit.per', { required: true });
  }
  const retry = c.object(spec.retry, 'spec.retry');
  c.known(retry, 'spec.retry', ['maxAttempts', 'backoff', 'permanentFailureStatuses']);
  c.integer(retry?.maxAttempts, 'spec.retry.maxAttempts', { min: 1, max: 1000 });
  const bo = c.object(retry?.backoff, 'spec.retry.backoff');
  c.known(bo, 'spec.retry.backoff', ['initial', 'max', 'multiplier']);
  const initial = c.duration(bo?.initial, 'spec.retry.backoff.initial');
  const max = c.duration(bo?.max, 'spec.retry.backoff.max');
  c.number(bo?.multiplier, 'spec.retry.backoff.multiplier', { min: 1, max: 100 });
  if (initial !== undefined && max !== undefined && max < initial) c.fail('spec.retry.backoff.max', 'must be at least backoff.initial');
  (c.list(retry?.permanentFailureStatuses, 'spec.retry.permanentFailureStatuses') ?? []).forEach((x, i) =>
    c.string(typeof x === 'number' ? String(x) : x, `spec.retry.permanentFailureStatuses[${i}]`, { required: true, pattern: HTTP_STATUS }));
  const dl = c.object(spec.deadLetter, 'spec.deadLetter');
  c.known(dl, 'spec.deadLetter', ['stream', 'maxLen', 'maxAge']);
  c.integer(dl?.maxLen, 'spec.deadLetter.maxLen', { min: 1 });
  c.duration(dl?.maxAge, 'spec.deadLetter.maxAge');
  const dls = c.string(dl?.stream, 'spec.deadLetter.stream', { required: dl !== undefined, pattern: STREAM_NAME, maxLength: 200 });
  if (dls !== undefined && dls === stream) c.fail('spec.deadLetter.stream', 'must differ from spec.stream');
  c.duration(spec.visibilityTimeout, 'spec.visibilityTimeout', { minMs: 1000 });
  // visibilityTimeout may be shorter than delivery.timeout: a live worker's sidecar keeps its
  // claim fresh while the app works, so only the tasks of dead workers are reclaimed.
  const ret = c.object(spec.retention, 'spec.retention');
  c.known(ret, 'spec.retention', ['maxLen']);
  c.integer(ret?.maxLen, 'spec.retention.maxLen', { min: 1 });
  const as = c.object(spec.autoscale, 'spec.autoscale');
  if (as) {
    c.known(as, 'spec.autoscale', ['scaleTargetRef', 'minReplicas', 'maxReplicas', 'targetLagPerReplica', 'stabilizationWindow']);
    const ref = c.object(as.scaleTargetRef, 'spec.autoscale.scaleTargetRef', true);
    c.known(ref, 'spec.autoscale.scaleTargetRef', ['apiVersion', 'kind', 'name']);
    c.string(ref?.kind, 'spec.autoscale.scaleTargetRef.kind', { required: true });
    c.string(ref?.name, 'spec.autoscale.scaleTargetRef.name', { required: true, pattern: DNS_SUBDOMAIN });
    c.string(ref?.apiVersion, 'spec.autoscale.scaleTargetRef.apiVersion');
    const min = c.integer(as.minReplicas, 'spec.autoscale.minReplicas', { min: 0 });
    const maxR = c.integer(as.maxReplicas, 'spec.autoscale.maxReplicas', { required: true, min: 1 });
    if (min !== undefined && maxR !== undefined && min > maxR) c.fail('spec.autoscale.minReplicas', `must not exceed maxReplicas (${maxR})`);
    c.integer(as.targetLagPerReplica, 'spec.autoscale.targetLagPerReplica', { required: true, min: 1 });
    c.duration(as.stabilizationWindow, 'spec.autoscale.stabilizationWindow');
  }
  c.string(spec.deletionPolicy, 'spec.deletionPolicy', { oneOf: ['Retain', 'Delete'] });
  const durability = c.string(spec.durability, 'spec.durability', { oneOf: ['Async', 'Replicated'] });
  // The bound keeps a producer's wait, and the connection WAIT holds, short.
  c.duration(spec.replicationTimeout, 'spec.replicationTimeout', { minMs: 10, maxMs: 5_000 });
  if (spec.replicationTimeout !== undefined && durability !== 'Replicated') c.fail('spec.replicationTimeout', 'only applies with durability: Replicated');
  return spec as unknown as TaskQueue['spec'];
}

function checkLeaderElectionSpec(c: Checker, spec: Obj): LeaderElection['spec'] {
  c.known(spec, 'spec', ['selector', 'ttl', 'renewEvery']);
  checkSelector(c, spec.selector, 'spec.selector');
  const ttl = c.duration(spec.ttl, 'spec.ttl', { required: true, minMs: 100 });
  const renew = c.duration(spec.renewEvery, 'spec.renewEvery', { required: true, minMs: 10 });
  if (ttl !== undefined && renew !== undefined && renew >= ttl) c.fail('spec.renewEvery', `must be shorter than spec.ttl (${String(spec.ttl)}), or the lease lapses between renewals`);
  return spec as unknown as LeaderElection['spec'];
}
