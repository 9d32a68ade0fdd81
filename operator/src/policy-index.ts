/**
 * What every pod should enforce, derived from the informer caches: per namespace and kind, the
 * verdicts of acceptPolicies() (cached until something in that namespace changes) and, per
 * policy, its last accepted generation.
 *
 * Last known good, at the operator: when an accepted policy is edited into an Invalid spec,
 * sidecars keep the previous generation (a typo must not remove a limit that was protecting a
 * service). A Conflicted policy is left out entirely, because the older policy already covers
 * that traffic. The memory is per process: after an operator restart, an Invalid policy's old
 * generation is no longer known and it is left out until fixed (documented in operator/README.md).
 */
import { selectorMatches } from '../../lib/policy/selector.ts';
import { mayProduceTo } from '../../lib/policy/producible.ts';
import { acceptPolicies, type Verdict } from './accept-policies.ts';
import type { PolicyKind } from './kinds.ts';
import type { KubeObject } from './kube-client.ts';
import { isTargetPod } from './pod-selection.ts';
import { policyRef } from './policy-document.ts';

/** Read access to the caches (informers in the operator, arrays in unit tests). */
export interface ClusterView {
  policies(kind: PolicyKind, namespace: string): KubeObject[];
  pods(namespace: string): KubeObject[];
}

export class PolicyIndex {
  private readonly view: ClusterView;
  readonly kinds: readonly PolicyKind[];
  private readonly verdicts = new Map<string, Map<string, Verdict>>();
  private readonly lastGood = new Map<string, KubeObject>();

  constructor(view: ClusterView, kinds: readonly PolicyKind[]) {
    this.view = view;
    this.kinds = kinds;
  }

  /** Something in `namespace` changed (a policy or a pod): recompute its verdicts on next read. */
  invalidate(namespace: string): void {
    for (const k of this.kinds) this.verdicts.delete(`${k.kind}/${namespace}`);
  }

  verdict(kind: PolicyKind, obj: KubeObject): Verdict | undefined {
    return this.namespaceVerdicts(kind, obj.metadata.namespace as string).get(obj.metadata.name);
  }

  /** The policy objects (any kind) a pod must enforce, as read from the API, sorted by reference. */
  resourcesFor(pod: KubeObject): KubeObject[] {
    const ns = pod.metadata.namespace as string;
    const labels = pod.metadata.labels ?? {};
    const out: KubeObject[] = [];
    for (const kind of this.kinds) {
      this.namespaceVerdicts(kind, ns);
      for (const obj of this.view.policies(kind, ns)) {
        const effective = this.effective(kind, obj);
        if (effective && selectorMatches(effective.spec?.selector ?? {}, labels)) out.push(effective);
      }
    }
    return out.sort((a, b) => policyRef(a).localeCompare(policyRef(b)));
  }

  /**
   * The TaskQueues a pod's app may produce to (lib/policy/producible.ts says which) among those
   * that go into snapshots (accepted, or their last accepted generation). Producing only:
   * consumption follows resourcesFor().
   */
  producibleFor(pod: KubeObject): KubeObject[] {
    const ns = pod.metadata.namespace as string;
    const kind = this.kinds.find((k) => k.kind === 'TaskQueue');
    if (!kind) return [];
    this.namespaceVerdicts(kind, ns);
    const out: KubeObject[] = [];
    for (const obj of this.view.policies(kind, ns)) {
      const effective = this.effective(kind, obj);
      if (effective && mayProduceTo({ namespace: obj.metadata.namespace as string }, ns)) out.push(effective);
    }
    return out.sort((a, b) => policyRef(a).localeCompare(policyRef(b)));
  }

  /** Target pods (alive, with a sidecar) a policy's spec selects, by their current labels. */
  targetsOf(obj: KubeObject): KubeObject[] {
    const selector = obj.spec?.selector;
    if (!selector) return [];
    return this.view.pods(obj.metadata.namespace as string).filter((p) => isTargetPod(p) && selectorMatches(selector, p.metadata.labels ?? {}));
  }

  /** The generation of `obj` that goes into snapshots: current if accepted, else the last accepted. */
  private effective(kind: PolicyKind, obj: KubeObject): KubeObject | undefined {
    const v = this.verdict(kind, obj);
    if (v?.accepted) return obj;
    if (v?.reason === 'Invalid') {
      const good = this.lastGood.get(policyRef(obj));
      if (good && good.metadata.uid === obj.metadata.uid) return good;
    }
    return undefined;
  }

  private namespaceVerdicts(kind: PolicyKind, namespace: string): Map<string, Verdict> {
    const key = `${kind.kind}/${namespace}`;
    let v = this.verdicts.get(key);
    if (v) return v;
    const policies = this.view.policies(kind, namespace);
    v = acceptPolicies(kind, policies, this.view.pods(namespace).filter(isTargetPod));
    this.verdicts.set(key, v);
    const present = new Set<string>();
    for (const p of policies) {
      const ref = policyRef(p);
      present.add(ref);
      const verdict = v.get(p.metadata.name);
      if (verdict?.accepted) this.lastGood.set(ref, p);
      else if (verdict?.reason === 'Conflicted') this.lastGood.delete(ref);
    }
    for (const ref of this.lastGood.keys()) {
      if (ref.startsWith(`${kind.kind}/${namespace}/`) && !present.has(ref)) this.lastGood.delete(ref);
    }
    return v;
  }
}
