import type { Logger } from '../../lib/log.ts';
import type { Informer } from './informer.ts';
import { objectKey } from './kube-client.ts';
import type { PolicyKind } from './kinds.ts';
import type { OperatorMetrics } from './metrics.ts';
import { reconcileQueue, type ReconcileResult, type WorkQueue } from './work-queue.ts';

/**
 * The shell every per-kind reconciler shares: a work queue of `namespace/name` keys, started
 * when this replica leads (every object queued once) and stopped when it does not, and the
 * status this replica last wrote per key — newer than the informer's copy while it leads, which
 * may still lag behind our own write. Subclasses only say how one key is reconciled.
 */
export abstract class KindReconciler<Status> {
  readonly kind: PolicyKind;
  readonly queue: WorkQueue;
  protected readonly written = new Map<string, { uid: string; status: Status }>();
  private readonly informer: Informer;

  constructor(opts: { kind: PolicyKind; informer: Informer; metrics: OperatorMetrics; logger: Logger }) {
    this.kind = opts.kind;
    this.informer = opts.informer;
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
}
