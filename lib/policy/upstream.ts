/**
 * The Upstream kind: a service the app calls through its own sidecar. The app dials a local port
 * (`listen`); the sidecar picks an endpoint per request, retries within a budget, times out, and
 * ejects endpoints that keep failing. Endpoints come from the operator (the ready addresses of the
 * referenced Service's EndpointSlices, sent apart from policy) or, standalone, from `endpoints`.
 *
 * Types, validation and compilation live together here so the kind stays one idea in one file.
 */
import { Checker, join } from './checker.ts';
import { parseDuration } from './duration.ts';
import type { Issue } from './errors.ts';
import { GRPC_CODES, resourceKey, type GrpcCodeName, type LabelSelector, type ObjectMeta } from './types.ts';

export type UpstreamProtocol = 'grpc' | 'http';
export type LoadBalancerAlgorithm = 'LeastRequest' | 'RoundRobin';

export interface UpstreamSpec {
  /** The calling pods: their sidecars serve `listen` for their app. */
  selector: LabelSelector;
  /** A Service of the Upstream's own namespace; `port` is its number or its name. */
  service?: { name: string; port: number | string };
  protocol: UpstreamProtocol;
  /** Where the app dials, `host:port` on loopback. */
  listen: string;
  loadBalancer?: { algorithm?: LoadBalancerAlgorithm; slowStart?: string };
  /** The whole call, retries included. */
  timeout?: string;
  retry?: {
    /** Tries in all, the first included (gRFC A6's maxAttempts). */
    attempts?: number;
    perTryTimeout?: string;
    backoff?: { initial?: string; max?: string };
    /** Named retryOn, not `on`: YAML 1.1 (kubectl) reads an unquoted `on` key as the boolean true. */
    retryOn?: { grpcCodes?: GrpcCodeName[]; httpStatuses?: string[]; reset?: boolean; connectFailure?: boolean };
    budget?: { percent?: number; minPerSecond?: number; window?: string };
  };
  outlierDetection?: { consecutiveFailures?: number; interval?: string; baseEjectionTime?: string; maxEjectionTime?: string; maxEjectionPercent?: number };
  /** Standalone mode only: `host:port` entries; a name is resolved again every `resolveEvery`. */
  endpoints?: string[];
  /** Standalone mode only: how often DNS names in `endpoints` are resolved again. */
  resolveEvery?: string;
}

export interface Upstream {
  apiVersion: 'sluice.dev/v1alpha1';
  kind: 'Upstream';
  metadata: ObjectMeta;
  spec: UpstreamSpec;
}

/** What the sidecar runs for one Upstream: every default filled in, every duration in ms. */
export interface UpstreamPlan {
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  readonly protocol: UpstreamProtocol;
  readonly listen: { readonly host: string; readonly port: number };
  readonly service: { readonly name: string; readonly port: number | string } | undefined;
  readonly loadBalancer: { readonly algorithm: LoadBalancerAlgorithm; readonly slowStartMs: number };
  readonly timeoutMs: number;
  readonly retry: {
    readonly attempts: number;
    readonly perTryTimeoutMs: number | undefined;
    readonly backoff: { readonly initialMs: number; readonly maxMs: number };
    /** Index by gRPC status code: 1 when a try that ends with it may be retried. */
    readonly grpcCodes: Uint8Array;
    /** Index by HTTP status (0..599). */
    readonly httpStatuses: Uint8Array;
    readonly reset: boolean;
    readonly connectFailure: boolean;
    readonly budget: { readonly percent: number; readonly minPerSecond: number; readonly windowMs: number };
  };
  readonly outlierDetection: {
    readonly consecutiveFailures: number;
    readonly intervalMs: number;
    readonly baseEjectionMs: number;
    readonly maxEjectionMs: number;
    readonly maxEjectionPercent: number;
  };
  /** Standalone endpoints (`host:port`); empty in operator mode, where endpoint updates feed it. */
  readonly endpoints: readonly string[];
  readonly resolveEveryMs: number;
  readonly source: UpstreamSpec;
}

export const UPSTREAM_DEFAULTS = {
  algorithm: 'LeastRequest',
  timeout: '15s',
  attempts: 1,
  attemptsWithRetry: 2,
  backoffInitial: '25ms',
  backoffMax: '250ms',
  retryOnGrpcCodes: ['UNAVAILABLE'] as GrpcCodeName[],
  retryOnHttpStatuses: ['503'],
  budgetPercent: 20,
  budgetMinPerSecond: 10,
  budgetWindow: '10s',
  consecutiveFailures: 5,
  interval: '10s',
  baseEjectionTime: '30s',
  maxEjectionTime: '300s',
  maxEjectionPercent: 50,
  resolveEvery: '5s',
} as const;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const PORT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const HTTP_STATUS = /^([1-5]xx|[1-5][0-9][0-9])$/;
/** `host:port`, IPv6 hosts in brackets. */
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/;

/** Loopback only: an outbound port must never be reachable from other pods. */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') ? host.slice(1, -1) : host;
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Splits `host:port` (IPv6 in brackets), or undefined when it is not one. */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = HOST_PORT.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (!(port >= 1 && port <= 65_535)) return undefined;
  const host = m[1] as string;
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port };
}

type Obj = Record<string, unknown>;

/** The checks of the CRD schema plus what it cannot say (loopback, ordered durations). */
export function checkUpstreamSpec(c: Checker, spec: Obj, checkSelector: (c: Checker, v: unknown, path: string) => unknown): void {
  c.known(spec, 'spec', ['selector', 'service', 'protocol', 'listen', 'loadBalancer', 'timeout', 'retry', 'outlierDetection', 'endpoints', 'resolveEvery']);
  checkSelector(c, spec.selector, 'spec.selector');
  const svc = c.object(spec.service, 'spec.service');
  if (svc) {
    c.known(svc, 'spec.service', ['name', 'port']);
    c.string(svc.name, 'spec.service.name', { required: true, pattern: DNS_LABEL, maxLength: 63 });
    if (svc.port === undefined) c.fail('spec.service.port', 'is required (a port number or the name of a port of the Service)');
    else if (typeof svc.port === 'number') c.integer(svc.port, 'spec.service.port', { min: 1, max: 65_535 });
    else c.string(svc.port, 'spec.service.port', { pattern: PORT_NAME, maxLength: 15 });
  }
  const endpoints = c.list(spec.endpoints, 'spec.endpoints', { minItems: 1 });
  (endpoints ?? []).forEach((e, i) => {
    const p = join('spec.endpoints', i);
    const s = c.string(e, p, { required: true, maxLength: 260 });
    if (s !== undefined && !parseHostPort(s)) c.fail(p, `"${s}" is not host:port (a name or an address, IPv6 in brackets, port 1-65535)`);
  });
  if (endpoints && endpoints.length > 256) c.fail('spec.endpoints', 'must have at most 256 entries');
  if (!svc && !endpoints) c.fail('spec.service', 'is required (or, in standalone mode only, spec.endpoints)');
  c.duration(spec.resolveEvery, 'spec.resolveEvery', { minMs: 100 });
  c.string(spec.protocol, 'spec.protocol', { required: true, oneOf: ['grpc', 'http'] });
  const listen = c.string(spec.listen, 'spec.listen', { required: true, maxLength: 64 });
  if (listen !== undefined) {
    const hp = parseHostPort(listen);
    if (!hp) c.fail('spec.listen', `"${listen}" is not host:port`);
    else if (!isLoopbackHost(hp.host)) c.fail('spec.listen', `must be a loopback address (127.0.0.1, [::1] or localhost), so only the app in the pod can dial it (got "${hp.host}")`);
  }
  const lb = c.object(spec.loadBalancer, 'spec.loadBalancer');
  c.known(lb, 'spec.loadBalancer', ['algorithm', 'slowStart']);
  c.string(lb?.algorithm, 'spec.loadBalancer.algorithm', { oneOf: ['LeastRequest', 'RoundRobin'] });
  c.duration(lb?.slowStart, 'spec.loadBalancer.slowStart');
  const timeout = c.duration(spec.timeout, 'spec.timeout');

  const retry = c.object(spec.retry, 'spec.retry');
  if (retry) {
    c.known(retry, 'spec.retry', ['attempts', 'perTryTimeout', 'backoff', 'retryOn', 'budget']);
    c.integer(retry.attempts, 'spec.retry.attempts', { min: 1, max: 5 });
    const perTry = c.duration(retry.perTryTimeout, 'spec.retry.perTryTimeout');
    if (perTry !== undefined && timeout !== undefined && perTry > timeout) c.fail('spec.retry.perTryTimeout', `must not exceed spec.timeout (${String(spec.timeout)})`);
    const bo = c.object(retry.backoff, 'spec.retry.backoff');
    c.known(bo, 'spec.retry.backoff', ['initial', 'max']);
    const initial = c.duration(bo?.initial, 'spec.retry.backoff.initial');
    const max = c.duration(bo?.max, 'spec.retry.backoff.max');
    if (initial !== undefined && max !== undefined && max < initial) c.fail('spec.retry.backoff.max', 'must be at least backoff.initial');
    const on = c.object(retry.retryOn, 'spec.retry.retryOn');
    if (on) {
      c.known(on, 'spec.retry.retryOn', ['grpcCodes', 'httpStatuses', 'reset', 'connectFailure']);
      (c.list(on.grpcCodes, 'spec.retry.retryOn.grpcCodes') ?? []).forEach((x, i) =>
        c.string(x, `spec.retry.retryOn.grpcCodes[${i}]`, { required: true, oneOf: GRPC_CODES }));
      (c.list(on.httpStatuses, 'spec.retry.retryOn.httpStatuses') ?? []).forEach((x, i) =>
        c.string(typeof x === 'number' ? String(x) : x, `spec.retry.retryOn.httpStatuses[${i}]`, { required: true, pattern: HTTP_STATUS }));
      c.boolean(on.reset, 'spec.retry.retryOn.reset');
      c.boolean(on.connectFailure, 'spec.retry.retryOn.connectFailure');
    }
    const budget = c.object(retry.budget, 'spec.retry.budget');
    c.known(budget, 'spec.retry.budget', ['percent', 'minPerSecond', 'window']);
    c.number(budget?.percent, 'spec.retry.budget.percent', { min: 0, max: 100 });
    c.integer(budget?.minPerSecond, 'spec.retry.budget.minPerSecond', { min: 0, max: 100_000 });
    c.duration(budget?.window, 'spec.retry.budget.window', { minMs: 1_000 });
  }

  const od = c.object(spec.outlierDetection, 'spec.outlierDetection');
  if (od) {
    c.known(od, 'spec.outlierDetection', ['consecutiveFailures', 'interval', 'baseEjectionTime', 'maxEjectionTime', 'maxEjectionPercent']);
    c.integer(od.consecutiveFailures, 'spec.outlierDetection.consecutiveFailures', { min: 1 });
    c.duration(od.interval, 'spec.outlierDetection.interval', { minMs: 100 });
    const base = c.duration(od.baseEjectionTime, 'spec.outlierDetection.baseEjectionTime', { minMs: 100 });
    const max = c.duration(od.maxEjectionTime, 'spec.outlierDetection.maxEjectionTime', { minMs: 100 });
    if (max !== undefined && max < (base ?? 30_000)) c.fail('spec.outlierDetection.maxEjectionTime', 'must be at least baseEjectionTime');
    c.number(od.maxEjectionPercent, 'spec.outlierDetection.maxEjectionPercent', { min: 0, max: 100 });
  }
}

/**
 * Upstreams of one plan may not share a listen address: the second bind would fail at run time,
 * so the set is refused at compile time instead.
 */
export function upstreamClashes(upstreams: readonly Upstream[]): Issue[] {
  const issues: Issue[] = [];
  const seen = new Map<string, string>();
  for (const u of upstreams) {
    const hp = parseHostPort(u.spec.listen);
    if (!hp) continue;
    const key = `${isLoopbackHost(hp.host) && hp.host !== '::1' ? 'loopback' : hp.host}:${hp.port}`;
    const first = seen.get(key);
    if (first) issues.push({ path: `Upstream ${resourceKey(u)}: spec.listen`, message: `${u.spec.listen} is already the listen address of Upstream ${first}; each Upstream needs its own port` });
    else seen.set(key, resourceKey(u));
  }
  return issues;
}

const ms = (d: string | undefined, fallback: string): number => parseDuration(d ?? fallback) as number;

function statusTable(statuses: readonly string[]): Uint8Array {
  const table = new Uint8Array(600);
  for (const s of statuses) {
    if (s.endsWith('xx')) table.fill(1, Number(s[0]) * 100, Number(s[0]) * 100 + 100);
    else table[Number(s)] = 1;
  }
  return table;
}

export function compileUpstream(u: Upstream): UpstreamPlan {
  const s = u.spec;
  const d = UPSTREAM_DEFAULTS;
  const on = s.retry?.retryOn;
  const grpcCodes = new Uint8Array(GRPC_CODES.length);
  for (const name of on?.grpcCodes ?? d.retryOnGrpcCodes) grpcCodes[GRPC_CODES.indexOf(name)] = 1;
  const listen = parseHostPort(s.listen) as { host: string; port: number };
  const baseEjectionMs = ms(s.outlierDetection?.baseEjectionTime, d.baseEjectionTime);
  return {
    id: resourceKey(u),
    name: u.metadata.name,
    namespace: u.metadata.namespace ?? 'default',
    protocol: s.protocol,
    listen: { host: listen.host === 'localhost' ? '127.0.0.1' : listen.host, port: listen.port },
    service: s.service && { name: s.service.name, port: s.service.port },
    loadBalancer: { algorithm: s.loadBalancer?.algorithm ?? d.algorithm, slowStartMs: s.loadBalancer?.slowStart ? ms(s.loadBalancer.slowStart, '0ms') : 0 },
    timeoutMs: ms(s.timeout, d.timeout),
    retry: {
      attempts: s.retry?.attempts ?? (s.retry ? d.attemptsWithRetry : d.attempts),
      perTryTimeoutMs: s.retry?.perTryTimeout === undefined ? undefined : ms(s.retry.perTryTimeout, '0ms'),
      backoff: { initialMs: ms(s.retry?.backoff?.initial, d.backoffInitial), maxMs: Math.max(ms(s.retry?.backoff?.initial, d.backoffInitial), ms(s.retry?.backoff?.max, d.backoffMax)) },
      grpcCodes,
      httpStatuses: statusTable((on?.httpStatuses ?? d.retryOnHttpStatuses).map(String)),
      reset: on?.reset ?? true,
      connectFailure: on?.connectFailure ?? true,
      budget: {
        percent: s.retry?.budget?.percent ?? d.budgetPercent,
        minPerSecond: s.retry?.budget?.minPerSecond ?? d.budgetMinPerSecond,
        windowMs: ms(s.retry?.budget?.window, d.budgetWindow),
      },
    },
    outlierDetection: {
      consecutiveFailures: s.outlierDetection?.consecutiveFailures ?? d.consecutiveFailures,
      intervalMs: ms(s.outlierDetection?.interval, d.interval),
      baseEjectionMs,
      maxEjectionMs: Math.max(baseEjectionMs, ms(s.outlierDetection?.maxEjectionTime, d.maxEjectionTime)),
      maxEjectionPercent: s.outlierDetection?.maxEjectionPercent ?? d.maxEjectionPercent,
    },
    endpoints: [...(s.endpoints ?? [])],
    resolveEveryMs: ms(s.resolveEvery, d.resolveEvery),
    source: s,
  };
}
