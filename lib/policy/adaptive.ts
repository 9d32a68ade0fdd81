import { join, type Checker } from './checker.ts';
import { parseDuration } from './duration.ts';

/**
 * Limits that follow load, as a user writes them and as the sidecar enforces them:
 *  - `limit.warmUp` on a rate-limit rule: a cold limit ramps from `requests / coldFactor` to
 *    `requests` over `period`;
 *  - `adaptiveConcurrency` on a CircuitBreakerPolicy rule: the concurrency limit follows the app's
 *    latency (Gradient or AIMD) between `minLimit` and `maxLimit`;
 *  - `priority` on either kind of rule: lower levels are refused first as utilisation rises, and
 *    a share is reserved for the highest level;
 *  - `adaptiveConcurrency: {min, max}` on a TaskQueue: deliveries in flight per pod follow the
 *    worker's latency and its overload answers.
 * Checked (with field paths) and compiled here; validate.ts and compile.ts call in.
 */

export interface WarmUpSpec {
  period: string;
  coldFactor?: number;
}

export type AdaptiveAlgorithm = 'Gradient' | 'AIMD';

export interface AdaptiveConcurrencySpec {
  algorithm?: AdaptiveAlgorithm;
  minLimit?: number;
  maxLimit?: number;
  initialLimit?: number;
  /** How often the limit is recomputed from the latencies sampled meanwhile. */
  sampleWindow?: string;
  /** Gradient: how often the no-load latency is measured again (at minLimit, briefly). */
  minRttInterval?: string;
  /** Gradient: the latency above the no-load latency still counted as "no queueing", in percent. */
  tolerancePercent?: number;
  /** AIMD: a window whose latency exceeds this counts as overload. */
  latencyThreshold?: string;
  /** AIMD: the factor the limit is multiplied by on overload, in percent. */
  backoffPercent?: number;
}

export type PrioritySource = 'Header' | 'GrpcMetadata';

export interface PrioritySpec {
  key: { source: PrioritySource; name: string };
  levels: string[];
  default?: string;
  /** Percent of the limit only the highest level may use. */
  reserved?: number;
}

export interface TaskQueueAdaptiveSpec {
  min?: number;
  max: number;
}

export interface WarmUpPlan {
  readonly periodMs: number;
  readonly coldFactor: number;
}

export interface AdaptiveConcurrencyPlan {
  readonly algorithm: AdaptiveAlgorithm;
  readonly minLimit: number;
  readonly maxLimit: number;
  readonly initialLimit: number;
  readonly sampleWindowMs: number;
  readonly minRttIntervalMs: number;
  /** Calls measured at minLimit to learn the no-load latency (Envoy's request_count). */
  readonly minRttSamples: number;
  readonly tolerance: number;
  readonly latencyThresholdMs: number | undefined;
  readonly backoff: number;
}

export interface PriorityPlan {
  readonly source: PrioritySource;
  /** Lower-cased header / metadata key. */
  readonly name: string;
  /** Highest first. */
  readonly levels: readonly string[];
  readonly defaultLevel: number;
  readonly reservedPercent: number;
  /**
   * Per level, the utilisation (share of the limit in use, 0..1) up to which the level is still
   * admitted: 1 for the highest, then one `reserved` share less for each level down.
   */
  readonly ceilings: readonly number[];
}

export interface TaskQueueAdaptivePlan {
  readonly min: number;
  readonly max: number;
}

export const DEFAULT_COLD_FACTOR = 3;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

type Obj = Record<string, unknown>;

export function checkWarmUp(c: Checker, v: unknown, path: string): void {
  const w = c.object(v, path);
  if (!w) return;
  c.known(w, path, ['period', 'coldFactor']);
  c.duration(w.period, join(path, 'period'), { required: true, minMs: 100 });
  c.number(w.coldFactor, join(path, 'coldFactor'), { min: 1.1, max: 100 });
}

export function checkAdaptiveConcurrency(c: Checker, v: unknown, path: string): void {
  const a = c.object(v, path);
  if (!a) return;
  c.known(a, path, ['algorithm', 'minLimit', 'maxLimit', 'initialLimit', 'sampleWindow', 'minRttInterval', 'tolerancePercent', 'latencyThreshold', 'backoffPercent']);
  const algorithm = c.string(a.algorithm, join(path, 'algorithm'), { oneOf: ['Gradient', 'AIMD'] }) ?? 'Gradient';
  const min = c.integer(a.minLimit, join(path, 'minLimit'), { min: 1, max: 100_000 });
  const max = c.integer(a.maxLimit, join(path, 'maxLimit'), { min: 1, max: 100_000 });
  const initial = c.integer(a.initialLimit, join(path, 'initialLimit'), { min: 1, max: 100_000 });
  if (min !== undefined && max !== undefined && min > max) c.fail(join(path, 'minLimit'), `must not exceed maxLimit (${max})`);
  const lo = min ?? 1;
  const hi = max ?? 1000;
  if (initial !== undefined && (initial < lo || initial > hi)) c.fail(join(path, 'initialLimit'), `must lie between minLimit (${lo}) and maxLimit (${hi})`);
  c.duration(a.sampleWindow, join(path, 'sampleWindow'), { minMs: 10 });
  c.duration(a.minRttInterval, join(path, 'minRttInterval'), { minMs: 1000 });
  c.number(a.tolerancePercent, join(path, 'tolerancePercent'), { min: 0, max: 1000 });
  c.duration(a.latencyThreshold, join(path, 'latencyThreshold'));
  c.integer(a.backoffPercent, join(path, 'backoffPercent'), { min: 10, max: 99 });
  const gradientOnly = ['minRttInterval', 'tolerancePercent'].filter((f) => a[f] !== undefined);
  const aimdOnly = ['latencyThreshold', 'backoffPercent'].filter((f) => a[f] !== undefined);
  if (algorithm === 'AIMD') for (const f of gradientOnly) c.fail(join(path, f), 'applies to algorithm Gradient only');
  if (algorithm === 'Gradient') for (const f of aimdOnly) c.fail(join(path, f), 'applies to algorithm AIMD only');
  if (algorithm === 'AIMD' && a.latencyThreshold === undefined) c.fail(join(path, 'latencyThreshold'), 'is required for algorithm AIMD (the latency above which the limit backs off)');
}

/** `protocol` is the rule's match.protocol: gRPC metadata needs gRPC traffic. */
export function checkPriority(c: Checker, v: unknown, path: string, protocol: string | undefined): void {
  const p = c.object(v, path);
  if (!p) return;
  c.known(p, path, ['key', 'levels', 'default', 'reserved']);
  const kp = join(path, 'key');
  const key = c.object(p.key, kp, true);
  c.known(key, kp, ['source', 'name']);
  const source = c.string(key?.source, join(kp, 'source'), { required: true, oneOf: ['Header', 'GrpcMetadata'] });
  c.string(key?.name, join(kp, 'name'), { required: true, pattern: HEADER_NAME, maxLength: 256 });
  if (source === 'GrpcMetadata' && protocol !== 'grpc') c.fail(join(kp, 'source'), 'GrpcMetadata needs match.protocol: grpc');
  const lp = join(path, 'levels');
  const levels = c.list(p.levels, lp, { required: true, minItems: 2 }) ?? [];
  if (levels.length > 16) c.fail(lp, `must have at most 16 items (got ${levels.length})`);
  const seen = new Set<string>();
  levels.forEach((l, i) => {
    const name = c.string(l, join(lp, i), { required: true, pattern: DNS_LABEL, maxLength: 63 });
    if (name === undefined) return;
    if (seen.has(name)) c.fail(join(lp, i), `"${name}" is listed twice; levels must be unique`);
    seen.add(name);
  });
  const def = c.string(p.default, join(path, 'default'));
  if (def !== undefined && levels.length > 0 && !levels.includes(def)) c.fail(join(path, 'default'), `must be one of the levels (${levels.join(', ')})`);
  const reserved = c.integer(p.reserved, join(path, 'reserved'), { min: 0, max: 90 });
  if (reserved !== undefined && levels.length > 1 && reserved * (levels.length - 1) >= 100) {
    c.fail(join(path, 'reserved'), `leaves nothing for the lowest level: ${levels.length - 1} levels × ${reserved}% ≥ 100%`);
  }
}

export function checkTaskQueueAdaptive(c: Checker, spec: Obj): void {
  const path = 'spec.adaptiveConcurrency';
  const a = c.object(spec.adaptiveConcurrency, path);
  if (!a) return;
  c.known(a, path, ['min', 'max']);
  const min = c.integer(a.min, join(path, 'min'), { min: 1, max: 10_000 });
  const max = c.integer(a.max, join(path, 'max'), { required: true, min: 1, max: 10_000 });
  if (min !== undefined && max !== undefined && min > max) c.fail(join(path, 'min'), `must not exceed max (${max})`);
  // Beside adaptiveConcurrency, `concurrency` is only where the limit starts (clamped into
  // [min, max]): the CRD defaults it, so it cannot be refused for lying outside.
}

const ms = (d: string | undefined, fallback: number): number => (d === undefined ? fallback : (parseDuration(d) as number));

export function compileWarmUp(w: WarmUpSpec | undefined): WarmUpPlan | undefined {
  return w && { periodMs: ms(w.period, 0), coldFactor: w.coldFactor ?? DEFAULT_COLD_FACTOR };
}

export function compileAdaptiveConcurrency(a: AdaptiveConcurrencySpec | undefined): AdaptiveConcurrencyPlan | undefined {
  if (!a) return undefined;
  const minLimit = a.minLimit ?? 1;
  const maxLimit = a.maxLimit ?? 1000;
  return {
    algorithm: a.algorithm ?? 'Gradient',
    minLimit,
    maxLimit,
    initialLimit: a.initialLimit ?? Math.min(maxLimit, Math.max(minLimit, 20)),
    sampleWindowMs: ms(a.sampleWindow, 100),
    minRttIntervalMs: ms(a.minRttInterval, 30_000),
    minRttSamples: 25,
    tolerance: (a.tolerancePercent ?? 50) / 100,
    latencyThresholdMs: a.latencyThreshold === undefined ? undefined : ms(a.latencyThreshold, 0),
    backoff: (a.backoffPercent ?? 90) / 100,
  };
}

export function compilePriority(p: PrioritySpec | undefined): PriorityPlan | undefined {
  if (!p) return undefined;
  const reserved = p.reserved ?? 0;
  return {
    source: p.key.source,
    name: p.key.name.toLowerCase(),
    levels: p.levels,
    // Unknown or missing values get the stated default, or the lowest level: a client must not
    // gain priority by leaving the header out.
    defaultLevel: p.default === undefined ? p.levels.length - 1 : p.levels.indexOf(p.default),
    reservedPercent: reserved,
    ceilings: p.levels.map((_, i) => 1 - (i * reserved) / 100),
  };
}

/** Where an adaptive TaskQueue limit starts: `concurrency`, clamped into [min, max]. */
export function adaptiveStart(concurrency: number | undefined, a: TaskQueueAdaptiveSpec): number {
  return Math.min(a.max, Math.max(a.min ?? 1, concurrency ?? 10));
}

export function compileTaskQueueAdaptive(a: TaskQueueAdaptiveSpec | undefined): TaskQueueAdaptivePlan | undefined {
  return a && { min: a.min ?? 1, max: a.max };
}
