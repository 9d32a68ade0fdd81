import type { Clock } from '../../lib/clock.ts';
import type { Logger } from '../../lib/log.ts';
import { eventType, type Transition } from './conditions.ts';
import type { EventRecorder } from './event-recorder.ts';
import type { Informer } from './informer.ts';
import { objectKey, resourcePath, splitKey, type KubeClient, type KubeObject } from './kube-client.ts';
import type { PolicyKind } from './kinds.ts';
import type { OperatorMetrics } from './metrics.ts';
import type { PolicyIndex } from './policy-index.ts';
import type { ProgrammingTracker } from './programming-tracker.ts';
import { reconcileQueue, type ReconcileResult, type WorkQueue } from './work-queue.ts';

/** What every per-kind reconciler is built from; a kind adds what it alone needs (Redis, pods, lock nodes). */
export interface ReconcilerOptions {
  kind: PolicyKind;
  informer: Informer;
  index: PolicyIndex;
  tracker: ProgrammingTracker;
  client: KubeClient;
  events: EventRecorder;
  logger: Logger;
  metrics: OperatorMetrics;
  clock: Clock;
}

/**
 * The shell every per-kind reconciler shares: a work queue of `namespace/name` keys, started
 * when this replica leads (every object queued once) and stopped when it does not, and the
 * status this replica last wrote per key — newer than the informer's copy while it leads, which
 * may still lag behind our own write. Subclasses say how one key is reconciled and end with
 * finish(), so every kind counts, writes status and tells its transitions the same way.
 */
export abstract class KindReconciler<Status> {
  readonly kind: PolicyKind;
  readonly queue: WorkQueue;
  protected readonly written = new Map<string, { uid: string; status: Status }>();
  private readonly informer: Informer;
  private readonly shell: { client: KubeClient; events: EventRecorder; metrics: OperatorMetrics };

  constructor(opts: { kind: PolicyKind; informer: Informer; metrics: OperatorMetrics; logger: Logger; client: KubeClient; events: EventRecorder }) {
    this.kind = opts.kind;
    this.informer = opts.informer;
    this.shell = { client: opts.client, events: opts.events, metrics: opts.metrics };
    this.queue = reconcileQueue({ kind: opts.kind.kind, handler: (key) => this.reconcile(key), metrics: opts.metrics, logger: opts.logger });
  }

  /** Begin reconciling (on becoming leader): every object of the kind is queued once. */
  start(): void {
    this.written.clear();
    this.onStart();
    this.queue.start();
    for (const o of this.informer.list()) this.queue.add(objectKey(o));
  }

  /** Hook for state that must be fresh each time this replica starts leading. */
  protected onStart(): void {}

  stop(): void {
    this.queue.stop();
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  abstract reconcile(key: string): Promise<ReconcileResult | void>;

  /**
   * The end of every reconcile: count it; when the planned status differs, write it and tell each
   * condition transition as an Event (conditions.ts eventType: Warning or Normal). `tell` leaves
   * out transitions a kind tells in an Event of its own. Resolves to whether status was written.
   */
  protected async finish(
    key: string,
    obj: KubeObject,
    plan: { changed: boolean; status: Status; transitions: readonly Transition[] },
    tell: (t: Transition) => boolean = () => true,
  ): Promise<boolean> {
    const { client, events, metrics } = this.shell;
    metrics.reconciles.inc({ kind: this.kind.kind, result: 'ok' });
    if (!plan.changed) return false;
    const { namespace, name } = splitKey(objectKey(obj));
    // A merge patch replaces `conditions` whole (it is a list) and needs no resourceVersion: only
    // the leader writes status, so there is no other writer to lose an update to.
    await client.patch(resourcePath(this.kind, namespace, name, 'status'), { status: plan.status });
    metrics.statusWrites.inc({ kind: this.kind.kind });
    this.written.set(key, { uid: obj.metadata.uid ?? '', status: plan.status });
    for (const t of plan.transitions) if (tell(t)) events.record(obj, eventType(t), t.reason, `${t.type}: ${t.message}`);
    return true;
  }
}
