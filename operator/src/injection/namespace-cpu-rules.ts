/**
 * What a namespace demands of a container's CPU, read from its ResourceQuotas and LimitRanges,
 * and the sidecar CPU the injector settles on. Pure: the webhook lists the two kinds and hands
 * the objects in.
 *
 * Why the injector must care: LimitRange defaults are applied by a built-in admission plugin
 * before mutating webhooks run, and quota is checked after them. A namespace whose ResourceQuota
 * tracks `limits.cpu` refuses any container without a CPU limit ("must specify limits.cpu"), and
 * a LimitRange `max` refuses a limit above it (or none); a LimitRange `min` refuses a request
 * below it. The sidecar gets no CPU limit by default — a limit means CFS throttling, which adds
 * tail latency to every proxied request as soon as a burst uses the period's quota — so it gets
 * one only where the namespace requires it.
 */
import { parseQuantity } from './quantity.ts';

export interface NamespaceCpuRules {
  /** A ResourceQuota tracks limits.cpu, or a LimitRange caps CPU: a container needs a CPU limit. */
  limitRequired: boolean;
  /** The smallest LimitRange maximum for a container's (or a pod's) CPU, in cores. */
  maxCores?: number;
  /** The largest LimitRange minimum for a container's CPU, in cores. */
  minCores?: number;
  /** The LimitRange's smallest maxLimitRequestRatio for CPU. */
  maxRatio?: number;
}

interface QuotaLike { spec?: { hard?: Record<string, string> } }
interface LimitRangeLike { spec?: { limits?: { type?: string; max?: Record<string, string>; min?: Record<string, string>; maxLimitRequestRatio?: Record<string, string> }[] } }

const NO_RULES: NamespaceCpuRules = Object.freeze({ limitRequired: false });

export function namespaceCpuRules(quotas: readonly QuotaLike[], limitRanges: readonly LimitRangeLike[]): NamespaceCpuRules {
  let limitRequired = quotas.some((q) => q.spec?.hard?.['limits.cpu'] !== undefined);
  let maxCores: number | undefined;
  let minCores: number | undefined;
  let maxRatio: number | undefined;
  const cores = (q: string | undefined) => (q === undefined ? undefined : parseCores(q));
  for (const lr of limitRanges) {
    for (const item of lr.spec?.limits ?? []) {
      if (item.type !== 'Container' && item.type !== 'Pod') continue;
      const max = cores(item.max?.cpu);
      if (max !== undefined) {
        limitRequired = true;
        maxCores = maxCores === undefined ? max : Math.min(maxCores, max);
      }
      const ratio = cores(item.maxLimitRequestRatio?.cpu);
      if (ratio !== undefined) {
        limitRequired = true;
        maxRatio = maxRatio === undefined ? ratio : Math.min(maxRatio, ratio);
      }
      const min = item.type === 'Container' ? cores(item.min?.cpu) : undefined;
      if (min !== undefined) minCores = minCores === undefined ? min : Math.max(minCores, min);
    }
  }
  if (!limitRequired && minCores === undefined) return NO_RULES;
  return {
    limitRequired,
    ...(maxCores !== undefined ? { maxCores } : {}),
    ...(minCores !== undefined ? { minCores } : {}),
    ...(maxRatio !== undefined ? { maxRatio } : {}),
  };
}

/**
 * The sidecar's CPU request and limit in this namespace. `limit` set explicitly (chart or pod
 * annotation) is kept as it is — the person asked for it, and the API server will say if the
 * namespace disagrees. Otherwise a required limit is `whenRequired`, lowered to the LimitRange
 * maximum; a request below the LimitRange minimum is raised to it; a ratio cap raises the
 * request to limit/ratio. `whenRequired` unset turns the policy off (the pod may be refused).
 */
export function sidecarCpu(
  set: { request?: string; limit?: string },
  rules: NamespaceCpuRules,
  whenRequired: string | undefined,
): { request?: string; limit?: string } {
  let request = set.request;
  let limit = set.limit;
  if (limit === undefined && rules.limitRequired && whenRequired !== undefined) {
    const wanted = parseCores(whenRequired) ?? 0;
    limit = rules.maxCores !== undefined && rules.maxCores < wanted ? millis(rules.maxCores) : whenRequired;
  }
  const req = request === undefined ? undefined : parseCores(request);
  if (rules.minCores !== undefined && (req === undefined || req < rules.minCores)) request = millis(rules.minCores);
  const lim = limit === undefined ? undefined : parseCores(limit);
  if (lim !== undefined && rules.maxRatio !== undefined) {
    const floor = lim / rules.maxRatio;
    const now = request === undefined ? lim : (parseCores(request) ?? 0);
    if (now < floor) request = millis(Math.ceil(floor * 1000) / 1000);
  }
  // A request above the limit would be refused by Pod validation: the limit wins.
  if (request !== undefined && lim !== undefined && (parseCores(request) ?? 0) > lim) request = limit;
  return { ...(request !== undefined ? { request } : {}), ...(limit !== undefined ? { limit } : {}) };
}

/** CPU in cores from a Kubernetes quantity as the API server returns it ("500m", "2", "1.5"). */
function parseCores(q: string): number | undefined {
  return parseQuantity(String(q));
}

function millis(cores: number): string {
  return `${Math.round(cores * 1000)}m`;
}
