/**
 * Which policies of one kind in one namespace are Accepted — a pure function of the policies and
 * the pods, so every operator replica reaches the same answer in any order of events.
 *
 * 1. Each spec must pass lib/policy's validation (what the CRD schema cannot say: regular
 *    expressions compile, durations are ordered, ...). Otherwise: Invalid.
 * 2. Two policies of the same kind conflict when a rule of each has the same match and some pod
 *    is selected by both: that traffic would get two limits (or two breakers) and which one the
 *    author meant is unknowable. The older policy (creationTimestamp, then name) keeps its place;
 *    the newer one is Conflicted. Only policies already accepted in that order can displace a
 *    later one, so a chain A–B–C where only B conflicts with both leaves A and C accepted.
 */
import { PolicyValidationError } from '../../lib/policy/errors.ts';
import { selectorMatches } from '../../lib/policy/selector.ts';
import type { LabelSelector, RouteMatch } from '../../lib/policy/types.ts';
import { validateResource } from '../../lib/policy/validate.ts';
import type { PolicyKind } from './kinds.ts';
import type { KubeObject } from './kube-client.ts';
import { policyDocument } from './policy-document.ts';
import { Reason } from './reasons.ts';

export type Verdict =
  | { accepted: true }
  | { accepted: false; reason: typeof Reason.Invalid | typeof Reason.Conflicted; message: string };

export function acceptPolicies(kind: PolicyKind, policies: readonly KubeObject[], pods: readonly KubeObject[]): Map<string, Verdict> {
  const verdicts = new Map<string, Verdict>();
  const valid: KubeObject[] = [];
  for (const p of policies) {
    const problem = validationProblem(p);
    if (problem) verdicts.set(p.metadata.name, { accepted: false, reason: Reason.Invalid, message: problem });
    else valid.push(p);
  }
  valid.sort(byAge);
  const accepted: KubeObject[] = [];
  for (const p of valid) {
    const conflict = kind.rules ? findConflict(p, accepted, pods) : kind.kind === 'Upstream' ? findListenClash(p, accepted, pods) : undefined;
    if (conflict) verdicts.set(p.metadata.name, { accepted: false, reason: Reason.Conflicted, message: conflict });
    else {
      verdicts.set(p.metadata.name, { accepted: true });
      accepted.push(p);
    }
  }
  return verdicts;
}

function validationProblem(p: KubeObject): string | undefined {
  try {
    validateResource(policyDocument(p));
    return undefined;
  } catch (err) {
    if (!(err instanceof PolicyValidationError)) throw err;
    return `${err.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}. Fix the spec and apply it again; sidecars keep enforcing the last accepted generation meanwhile.`;
  }
}

const byAge = (a: KubeObject, b: KubeObject): number =>
  (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') || a.metadata.name.localeCompare(b.metadata.name);

interface RuleLike { name: string; match?: RouteMatch }

function findConflict(p: KubeObject, accepted: readonly KubeObject[], pods: readonly KubeObject[]): string | undefined {
  const rules = (p.spec?.rules ?? []) as RuleLike[];
  for (const other of accepted) {
    const shared = pods.find((pod) => selects(p, pod) && selects(other, pod));
    if (!shared) continue;
    for (const [i, rule] of rules.entries()) {
      const key = canonicalMatch(rule.match);
      const twin = ((other.spec?.rules ?? []) as RuleLike[]).find((r) => canonicalMatch(r.match) === key);
      if (twin) {
        return `spec.rules[${i}] ("${rule.name}") has the same match as rule "${twin.name}" of ${other.kind} ${other.metadata.namespace}/${other.metadata.name}, `
          + `which is older, and both select pod ${shared.metadata.namespace}/${shared.metadata.name}. `
          + 'Change the match or the selector of one of them, or merge the rules into one policy.';
      }
    }
  }
  return undefined;
}

/**
 * Two Upstreams serving one pod on the same listen address cannot both bind: the older keeps it,
 * the newer is Conflicted (rather than the pod's whole snapshot being refused by its sidecar).
 */
function findListenClash(p: KubeObject, accepted: readonly KubeObject[], pods: readonly KubeObject[]): string | undefined {
  const listen = normalListen(p.spec?.listen);
  for (const other of accepted) {
    if (normalListen(other.spec?.listen) !== listen) continue;
    const shared = pods.find((pod) => selects(p, pod) && selects(other, pod));
    if (shared) {
      return `spec.listen ${String(p.spec?.listen)} is already the listen address of Upstream ${other.metadata.namespace}/${other.metadata.name}, `
        + `which is older, and both select pod ${shared.metadata.namespace}/${shared.metadata.name}. Give each Upstream its own port.`;
    }
  }
  return undefined;
}

function normalListen(v: unknown): string {
  return String(v).replace(/^(localhost|127\.\d+\.\d+\.\d+):/, 'loopback:');
}

function selects(policy: KubeObject, pod: KubeObject): boolean {
  return pod.metadata.namespace === policy.metadata.namespace
    && selectorMatches((policy.spec?.selector ?? {}) as LabelSelector, pod.metadata.labels ?? {});
}

/** A match in a canonical form: order of list entries and absent-vs-empty do not matter. */
export function canonicalMatch(m: RouteMatch | undefined): string {
  const sorted = (xs: string[] | undefined) => [...(xs ?? [])].sort();
  return JSON.stringify([
    m?.protocol ?? '',
    sorted(m?.methods?.map((x) => x.toUpperCase())),
    sorted(m?.paths?.map((x) => `${x.type ?? 'Prefix'}:${x.value}`)),
    sorted(m?.grpcMethods),
    sorted(m?.headers?.map((h) => `${h.name.toLowerCase()}:${h.type ?? 'Exact'}:${h.value ?? ''}`)),
    ...(m?.upstream ? [m.upstream] : []),
  ]);
}
