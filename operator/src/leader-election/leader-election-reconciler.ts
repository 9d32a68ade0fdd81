/**
 * The LeaderElection reconciler: the thin I/O shell around planLeadership(). Per key, every
 * time: the election, the pods it selects, their sidecars' latest claims (LeaderReports) and the
 * previous status → who leads; then the label `sluice.dev/leader=<name>` goes on the holder and
 * off every other pod of the namespace carrying it with this value, and status shows holder,
 * fencingToken, transitions, lastTransitionTime and the Elected condition (plus Accepted,
 * Programmed and targets, as for every kind).
 *
 * Reports arrive on the discovery stream (operator.ts enqueues the elections they name); the
 * reconciler requeues itself at the holder's validUntil, so a holder that went silent loses the
 * label when its lease would have ended.
 */
import { isNotFound } from '../errors.ts';
import { planExtendedStatus, type ExtendedStatus } from '../extended-status.ts';
import type { Informer } from '../informer.ts';
import { PODS } from '../kinds.ts';
import { objectKey, resourcePath, splitKey, type KubeObject } from '../kube-client.ts';
import type { LeaderReports } from './leader-reports.ts';
import type { LockNodeReader } from './lock-node-reader.ts';
import { planLeadership, type LeaderCandidate, type LeadershipState } from './plan-leadership.ts';
import { compiledPolicy, policyRef } from '../policy-document.ts';
import { ConditionType, Reason } from '../reasons.ts';
import { KindReconciler, type ReconcilerOptions } from '../kind-reconciler.ts';
import type { ReconcileResult } from '../work-queue.ts';

/** The label a Service selects the leader with. */
export const LEADER_LABEL = 'sluice.dev/leader';

export interface LeaderElectionReconcilerOptions extends ReconcilerOptions {
  pods: Informer;
  reports: LeaderReports;
  /** The RedLock nodes, when the operator may read them: claims are checked against the fencing counter. */
  lockNodes?: LockNodeReader | undefined;
}

export class LeaderElectionReconciler extends KindReconciler<ExtendedStatus> {
  private readonly opts: LeaderElectionReconcilerOptions;
  /** Wall-clock ms when this replica began leading: reports are only heard from then on. */
  private startedAt = 0;

  constructor(opts: LeaderElectionReconcilerOptions) {
    super(opts);
    this.opts = opts;
  }

  protected override onStart(): void {
    this.startedAt = this.opts.clock.wallNow();
  }

  override async reconcile(key: string): Promise<ReconcileResult | void> {
    const { informer, index, tracker, kind, clock, reports } = this.opts;
    const obj = informer.get(key);
    if (!obj || obj.metadata.deletionTimestamp) {
      this.written.delete(key);
      // The election is gone: so is its leader label (Services selecting it stop routing).
      if (!obj) await this.moveLabel(splitKey(key).namespace ?? 'default', splitKey(key).name, undefined);
      return;
    }
    const verdict = index.verdict(kind, obj);
    if (!verdict) return;
    const namespace = obj.metadata.namespace as string;
    const name = obj.metadata.name;
    const uid = obj.metadata.uid ?? '';
    const generation = obj.metadata.generation ?? 1;
    const memo = this.written.get(key);
    const existing = memo && memo.uid === uid ? memo.status : (obj.status as ExtendedStatus | undefined);
    const previous: LeadershipState = {
      holder: typeof existing?.holder === 'string' ? existing.holder : undefined,
      fencingToken: typeof existing?.fencingToken === 'number' ? existing.fencingToken : undefined,
      transitions: typeof existing?.transitions === 'number' ? existing.transitions : 0,
      lastTransitionTime: typeof existing?.lastTransitionTime === 'string' ? existing.lastTransitionTime : undefined,
    };

    const targets = index.targetsOf(obj);
    const selected = new Map(targets.map((p) => [p.metadata.name, p]));
    const candidates: LeaderCandidate[] = [];
    const names = new Set<string>([...selected.keys(), ...this.podsReportingOn(namespace), ...(previous.holder ? [previous.holder] : [])]);
    for (const pod of names) {
      const live = selected.get(pod);
      const report = reports.get(`${namespace}/${pod}`);
      // A report from an earlier pod of the same name (StatefulSet) does not speak for this one.
      const current = report && (!live || report.podUid === live.metadata.uid) ? report : undefined;
      candidates.push({ pod, selected: live !== undefined, claim: current?.claims.get(key) });
    }
    const now = clock.wallNow();
    const election = verdict.accepted ? compiledPolicy(obj)?.leaderElections[0] : undefined;
    // Only a claim that could start a new term needs the nodes' word; renewals and silence do not.
    const claimsNewTerm = candidates.some((c) => c.claim?.leader && !(c.pod === previous.holder && c.claim.fencingToken === previous.fencingToken));
    const lock = this.opts.lockNodes && claimsNewTerm ? await this.opts.lockNodes.read(namespace, name) : undefined;
    const leadership = election
      ? planLeadership({ previous, candidates, now, nowIso: iso(now), graceUntil: this.startedAt + election.ttlMs, ttlMs: election.ttlMs, lock })
      : { state: { ...previous, holder: undefined, lastTransitionTime: previous.holder ? iso(now) : previous.lastTransitionTime }, holderChanged: previous.holder !== undefined, ignored: [], recheckAt: undefined };
    for (const i of leadership.ignored) {
      // A made-up token is worth a warning: some pod is trying to take the leader label.
      const level = i.why === 'UnknownToken' || i.why === 'DuplicateToken' ? 'warn' : 'debug';
      this.opts.logger[level]('leader claim ignored', { election: key, pod: i.pod, why: i.why });
    }

    // Label first, status second: status never names a holder that does not carry the label yet.
    await this.moveLabel(namespace, name, leadership.state.holder);

    const s = leadership.state;
    const elected = s.holder
      ? { type: ConditionType.Elected, status: 'True' as const, reason: Reason.LeaderElected, message: `Pod ${s.holder} leads with fencing token ${s.fencingToken} and carries ${LEADER_LABEL}=${name}.` }
      : { type: ConditionType.Elected, status: 'False' as const, reason: Reason.NoLeader, message: verdict.accepted
        ? 'No selected pod holds a valid lease (none has reported leadership, or the last leader\'s lease ran out).'
        : 'The spec is not accepted (see the Accepted condition).' };
    const ref = policyRef(obj);
    const plan = planExtendedStatus({
      generation, existing, verdict, now: iso(now),
      targets: targets.map((pod) => {
        const podKey = objectKey(pod);
        return { pod: podKey, state: tracker.state(podKey, pod.metadata.uid ?? '', ref, uid, generation) };
      }),
      conditions: [elected],
      fields: {
        holder: s.holder ?? null,
        fencingToken: s.fencingToken ?? null,
        transitions: s.transitions,
        lastTransitionTime: s.lastTransitionTime ?? null,
      },
    });
    const newLeader = leadership.holderChanged && s.holder !== undefined;
    // A new leader is told by the LeaderChanged Event below, which names the previous one too.
    const written = await this.finish(key, obj, plan, (t) => !(newLeader && t.type === ConditionType.Elected));
    if (written && newLeader) {
      this.opts.events.record(obj, 'Normal', Reason.LeaderChanged, `Pod ${s.holder} leads with fencing token ${s.fencingToken} (previous leader: ${previous.holder ?? 'none'}).`);
    }
    if (leadership.recheckAt !== undefined) return { requeueAfter: Math.max(10, leadership.recheckAt - clock.wallNow() + 10) };
  }

  /** Pods of the namespace that reported on any election (candidates beyond the selected ones). */
  private podsReportingOn(namespace: string): string[] {
    return this.opts.pods.inNamespace(namespace)
      .filter((p) => this.opts.reports.get(objectKey(p)) !== undefined)
      .map((p) => p.metadata.name);
  }

  /** The label on `holder` only, among the namespace's pods (merge patches; a vanished pod is fine). The holder is always a selected, cached pod. */
  private async moveLabel(namespace: string, election: string, holder: string | undefined): Promise<void> {
    const pods = this.opts.pods.inNamespace(namespace);
    const patches: Promise<void>[] = [];
    for (const p of pods) {
      const has = p.metadata.labels?.[LEADER_LABEL] === election;
      const should = p.metadata.name === holder;
      if (has === should) continue;
      patches.push(this.labelPod(p, should ? election : null));
    }
    await Promise.all(patches);
  }

  private async labelPod(pod: KubeObject, value: string | null): Promise<void> {
    try {
      await this.opts.client.patch(resourcePath(PODS, pod.metadata.namespace, pod.metadata.name), { metadata: { labels: { [LEADER_LABEL]: value } } });
      this.opts.logger.info(value ? 'leader label set' : 'leader label removed', { pod: objectKey(pod), election: value ?? undefined });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}
