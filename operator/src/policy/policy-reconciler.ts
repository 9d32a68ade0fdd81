/**
 * The reconciler of one policy kind (one instance per kind, each with its own work queue): the
 * thin I/O shell around planPolicyStatus(). It re-reads everything each time — the object from
 * the informer cache, its verdict, the pods it selects and what their sidecars acknowledged — and
 * writes the status subresource only when the planned status differs. Level-triggered: it never
 * asks what event brought it here.
 *
 * TaskQueue and LeaderElection have reconcilers of their own (task-queue-reconciler.ts,
 * leader-election-reconciler.ts) that write the same Accepted/Programmed/targets plus their own
 * fields, so each kind's status keeps a single writer.
 */
import { objectKey } from '../kube-client.ts';
import { planPolicyStatus, type PolicyStatus } from './plan-policy-status.ts';
import { policyRef } from '../policy-document.ts';
import { KindReconciler, type ReconcilerOptions } from '../kind-reconciler.ts';
import type { ReconcileResult } from '../work-queue.ts';

export type PolicyReconcilerOptions = ReconcilerOptions;

export class PolicyReconciler extends KindReconciler<PolicyStatus> {
  private readonly opts: PolicyReconcilerOptions;

  constructor(opts: PolicyReconcilerOptions) {
    super(opts);
    this.opts = opts;
  }

  override async reconcile(key: string): Promise<ReconcileResult | void> {
    const { informer, index, tracker, kind } = this.opts;
    const obj = informer.get(key);
    if (!obj || obj.metadata.deletionTimestamp) {
      this.written.delete(key);
      return;
    }
    const verdict = index.verdict(kind, obj);
    if (!verdict) return; // not in the index yet: the informer event that adds it will queue us again
    const uid = obj.metadata.uid ?? '';
    const generation = obj.metadata.generation ?? 1;
    const ref = policyRef(obj);
    const targets = index.targetsOf(obj).map((pod) => {
      const podKey = objectKey(pod);
      return { pod: podKey, state: tracker.state(podKey, pod.metadata.uid ?? '', ref, uid, generation) };
    });
    const memo = this.written.get(key);
    const existing = memo && memo.uid === uid ? memo.status : (obj.status as Partial<PolicyStatus> | undefined);
    const plan = planPolicyStatus({ generation, existing, verdict, targets, now: new Date(this.opts.clock.wallNow()).toISOString().replace(/\.\d+Z$/, 'Z') });
    await this.finish(key, obj, plan);
  }
}
