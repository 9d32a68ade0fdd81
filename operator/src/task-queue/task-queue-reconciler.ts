/**
 * The TaskQueue reconciler: the thin I/O shell around planExtendedStatus / planTaskQueueStatus /
 * decideReplicas. Per key, every time, from observed state:
 *
 *   deleting? → honour spec.deletionPolicy (Delete: remove the stream, dead letters and side keys;
 *               Retain: leave them), then remove the finalizer — only once cleanup succeeded;
 *   accepted + Redis configured → finalizer first (before any external state exists), then
 *               XGROUP CREATE ... MKSTREAM (idempotent), then read length/pending/lag/dead letters/consumers;
 *   redrive   → a new `sluice.dev/redrive` annotation starts a dead-letter redrive in Redis (the
 *               worker sidecars move it); its progress is copied into status.redrive;
 *   autoscale → read the target's /scale, decide (pure, stabilised), write /scale if it differs;
 *   status   → Accepted/Programmed/targets + the queue numbers + Ready/Autoscaling.
 *
 * It requeues itself every `resyncMs` (lag changes without any Kubernetes event). Redis being
 * down is a state (Ready=False RedisUnavailable), never an error that crashes or hot-loops.
 */
import type { Redis } from 'ioredis';
import type { Clock } from '../../../lib/clock.ts';
import type { TaskQueuePlan } from '../../../lib/policy/plan.ts';
import { connectRedis, redactUrl } from '../../../lib/redis/connection.ts';
import { decideReplicas, type Recommendation } from './autoscale-decision.ts';
import { isNotFound } from '../errors.ts';
import { planExtendedStatus, type ExtendedStatus } from '../extended-status.ts';
import type { ResourceType } from '../kinds.ts';
import { objectKey, resourcePath, splitKey, type KubeObject } from '../kube-client.ts';
import { planTaskQueueStatus, type RedisObservation, type ScaleObservation } from './plan-task-queue-status.ts';
import { compiledPolicy, policyRef } from '../policy-document.ts';
import { deleteQueueData, ensureStreamAndGroup, queueStats } from './queue-redis.ts';
import { Reason } from '../reasons.ts';
import { KindReconciler, type ReconcilerOptions } from '../kind-reconciler.ts';
import type { RedriveRequestMessage } from '../../../lib/proto/discovery.ts';
import { readRedrive, startRedrive } from '../../../lib/redis/dead-letter-redrive.ts';
import { planRedrive, REDRIVE_ANNOTATION, redriveStatus, type RedriveStatus } from './plan-redrive.ts';
import type { ReconcileResult } from '../work-queue.ts';

/** Guards the stream (and its side keys) while deletionPolicy may still have to remove them. */
export const TASK_QUEUE_FINALIZER = 'sluice.dev/task-queue';

/** The workloads whose /scale the operator may use (RBAC grants exactly these). */
const SCALABLE: Record<string, ResourceType> = {
  Deployment: { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment' },
  StatefulSet: { group: 'apps', version: 'v1', plural: 'statefulsets', kind: 'StatefulSet' },
};

export interface TaskQueueReconcilerOptions extends ReconcilerOptions {
  /** `--redis`; undefined: Ready=False RedisNotConfigured. */
  redisUrl: string | undefined;
  /** Status and autoscaling refresh period. */
  resyncMs: number;
  /** Per-command timeout towards Redis (default 1s). */
  redisCommandTimeoutMs?: number;
  /**
   * Hands a redrive to one connected worker sidecar among the pods (DiscoveryServer.handRedrive);
   * returns the pod, or undefined when none is connected. Without it the operator starts the
   * redrive in Redis itself (a reconciler run without a discovery server).
   */
  handRedrive?: (podKeys: readonly string[], request: RedriveRequestMessage, avoid: ReadonlySet<string>) => string | undefined;
}

/** A redrive handed to a worker that has not started it after this goes to another worker. */
const HANDOFF_RETRY_MS = 5_000;

export class TaskQueueReconciler extends KindReconciler<ExtendedStatus> {
  private readonly opts: TaskQueueReconcilerOptions;
  private readonly redis: Redis | undefined;
  /** Autoscale recommendations by `key/uid`, for the stabilisation window. */
  private readonly recommendations = new Map<string, readonly Recommendation[]>();
  /** Redrives handed to worker sidecars and not yet seen started, by TaskQueue key. */
  private readonly handoffs = new Map<string, { request: string; at: number; tried: Set<string> }>();

  constructor(opts: TaskQueueReconcilerOptions) {
    super(opts);
    this.opts = opts;
    if (opts.redisUrl) {
      this.redis = connectRedis({ url: opts.redisUrl, name: 'operator-task-queues', commandTimeoutMs: opts.redisCommandTimeoutMs ?? 1_000, connectTimeoutMs: 1_000 });
      opts.logger.info('task queue redis', { url: redactUrl(opts.redisUrl) });
    }
  }

  /** Operator shutdown: the Redis connection goes too. */
  close(): void {
    this.queue.stop();
    this.redis?.disconnect();
  }

  override async reconcile(key: string): Promise<ReconcileResult | void> {
    const { informer, index, tracker, kind, clock } = this.opts;
    const obj = informer.get(key);
    if (!obj) {
      this.forget(key);
      return;
    }
    if (obj.metadata.deletionTimestamp) return this.finalize(key, obj);
    const verdict = index.verdict(kind, obj);
    if (!verdict) return;
    const uid = obj.metadata.uid ?? '';
    const generation = obj.metadata.generation ?? 1;
    const plan = verdict.accepted ? compiledPolicy(obj)?.taskQueues[0] : undefined;

    // The finalizer goes on before the stream exists, so a deletion can never skip its cleanup.
    let redis: RedisObservation;
    if (!plan) redis = { state: 'not-accepted' };
    else if (!this.redis) redis = { state: 'not-configured' };
    else {
      await this.ensureFinalizer(obj);
      try {
        await ensureStreamAndGroup(this.redis, plan);
        redis = { state: 'ok', stats: await queueStats(this.redis, plan) };
      } catch (err) {
        redis = { state: 'unavailable', error: (err as Error).message };
      }
    }

    const memo0 = this.written.get(key);
    const before = ((memo0 && memo0.uid === uid ? memo0.status : obj.status) as { redrive?: RedriveStatus } | undefined)?.redrive;
    let redrive: RedriveStatus | undefined = before;
    if (plan && this.redis && redis.state === 'ok') redrive = await this.redrive(key, obj, plan, before).catch(() => before);

    const scale = plan?.autoscale ? await this.autoscale(key, obj, plan, redis) : ({ state: 'disabled' } as const);

    const ref = policyRef(obj);
    const targets = index.targetsOf(obj).map((pod) => {
      const podKey = objectKey(pod);
      return { pod: podKey, state: tracker.state(podKey, pod.metadata.uid ?? '', ref, uid, generation) };
    });
    const memo = this.written.get(key);
    const existing = memo && memo.uid === uid ? memo.status : (obj.status as ExtendedStatus | undefined);
    const parts = planTaskQueueStatus(obj.spec?.stream ?? '', obj.spec?.consumerGroup ?? '', redis, scale);
    if (redrive !== undefined) parts.fields.redrive = redrive;
    const status = planExtendedStatus({
      generation, existing, verdict, targets, now: isoNow(clock), conditions: parts.conditions, fields: parts.fields,
    });
    await this.finish(key, obj, status);
    return plan ? { requeueAfter: this.opts.resyncMs } : undefined;
  }

  /**
   * Acts on the redrive annotation: a new value is handed to one worker sidecar of the queue over
   * its discovery stream (again, to another worker, if it has not started a few seconds later);
   * once started, its progress is read from Redis. The sidecars do the work; the operator records.
   */
  private async redrive(key: string, obj: KubeObject, plan: TaskQueuePlan, before: RedriveStatus | undefined): Promise<RedriveStatus | undefined> {
    const redis = this.redis as Redis;
    const step = planRedrive(obj.metadata.uid ?? '', obj.metadata.annotations?.[REDRIVE_ANNOTATION], plan.deadLetterStream !== undefined, before);
    switch (step.action) {
      case 'none':
        return before;
      case 'refuse':
        this.opts.events.record(obj, 'Warning', Reason.RedriveInvalid, step.status.message ?? '');
        return step.status;
      case 'follow': {
        const progress = await readRedrive(redis, plan);
        return progress && progress.id === step.id ? redriveStatus(step.requestHash, progress) : before;
      }
      case 'start':
        break;
    }
    const current = await readRedrive(redis, plan);
    if (current && current.id === step.id) {
      this.handoffs.delete(key);
      this.opts.events.record(obj, 'Normal', Reason.RedriveStarted, `Dead-letter redrive ${step.id} started by ${current.owner || 'a worker sidecar'} (max ${step.request.max || 'all'}, ${step.request.perSecond}/s).`);
      return redriveStatus(step.requestHash, current);
    }
    const pending = (message: string, owner?: string): RedriveStatus => ({ request: step.requestHash, id: step.id, state: 'Pending', message, ...(owner ? { owner } : {}) });
    if (current && current.state === 'running') return pending(`Waiting: redrive ${current.id} is still running (${current.moved} moved).`);
    const hand = this.opts.handRedrive;
    if (!hand) {
      const { started, progress } = await startRedrive(redis, plan, step.request, step.id, this.opts.clock.wallNow());
      if (!started) return pending(`Waiting: redrive ${progress.id} is still running (${progress.moved} moved).`);
      this.opts.events.record(obj, 'Normal', Reason.RedriveStarted, `Dead-letter redrive ${step.id} started (max ${step.request.max || 'all'}, ${step.request.perSecond}/s).`);
      return redriveStatus(step.requestHash, progress);
    }
    const now = this.opts.clock.now();
    const h = this.handoffs.get(key);
    if (h && h.request === step.requestHash && now - h.at < HANDOFF_RETRY_MS) return before;
    const tried = h && h.request === step.requestHash ? h.tried : new Set<string>();
    const pods = this.opts.index.targetsOf(obj).map((pod) => objectKey(pod));
    const pod = hand(pods, { queueNamespace: plan.namespace, queueName: plan.name, id: step.id, json: JSON.stringify(step.request) }, tried);
    if (pod === undefined) return pending('Waiting for a worker sidecar of the queue to be connected to the operator.');
    tried.add(pod);
    this.handoffs.set(key, { request: step.requestHash, at: now, tried });
    return pending(`Handed to the worker sidecar of ${pod}.`, pod);
  }

  /** Reads the target's /scale, decides, writes it when it differs. */
  private async autoscale(key: string, obj: KubeObject, plan: TaskQueuePlan, redis: RedisObservation): Promise<ScaleObservation> {
    const a = plan.autoscale!;
    const apiVersion = a.scaleTargetRef.apiVersion;
    const rt = apiVersion === 'apps/v1' ? SCALABLE[a.scaleTargetRef.kind] : undefined;
    if (!rt) return { state: 'unsupported', kind: a.scaleTargetRef.kind, apiVersion };
    if (redis.state !== 'ok') return { state: 'unknown', why: redis.state === 'unavailable' ? 'Redis is unavailable, so the lag is unknown' : 'no queue numbers' };
    const target = `${a.scaleTargetRef.kind}/${a.scaleTargetRef.name}`;
    const namespace = obj.metadata.namespace as string;
    const path = resourcePath(rt, namespace, a.scaleTargetRef.name, 'scale');
    let scaleObj: KubeObject;
    try {
      scaleObj = await this.opts.client.get(path);
    } catch (err) {
      if (isNotFound(err)) return { state: 'not-found', target };
      throw err;
    }
    const current = Number(scaleObj.spec?.replicas ?? 0);
    const now = this.opts.clock.now();
    const historyKey = `${key}/${obj.metadata.uid}`;
    // First look at this queue (or after an operator restart): count today's replicas as a
    // recommendation, so a restart never scales down before a full window has been observed.
    const history = this.recommendations.get(historyKey) ?? [{ at: now, replicas: current }];
    const stats = redis.stats;
    const decision = decideReplicas({
      backlog: (stats.lag ?? 0) + (stats.pending ?? 0),
      currentReplicas: current,
      spec: a,
      history,
      now,
    });
    this.recommendations.set(historyKey, decision.history);
    if (decision.direction !== 'none') {
      // resourceVersion makes it a compare-and-set: someone else's concurrent change wins, we re-decide.
      await this.opts.client.replace(path, {
        apiVersion: 'autoscaling/v1', kind: 'Scale',
        metadata: { name: a.scaleTargetRef.name, namespace, resourceVersion: scaleObj.metadata.resourceVersion },
        spec: { replicas: decision.desiredReplicas },
      });
      this.opts.logger.info('scaled', { queue: key, target, from: current, to: decision.desiredReplicas, why: decision.message });
      this.opts.events.record(obj, 'Normal', decision.direction === 'up' ? Reason.ScaledUp : Reason.ScaledDown, `${target} from ${current} to ${decision.desiredReplicas} replicas: ${decision.message}`);
    }
    return { state: 'active', target, replicas: decision.desiredReplicas, message: decision.message };
  }

  /** deletionPolicy, then the finalizer goes — only after cleanup succeeded (a throw retries). */
  private async finalize(key: string, obj: KubeObject): Promise<void> {
    const finalizers: string[] = (obj.metadata.finalizers as string[] | undefined) ?? [];
    if (!finalizers.includes(TASK_QUEUE_FINALIZER)) return this.forget(key);
    // A spec that no longer compiles keeps its data: deleting needs a stream named beyond doubt.
    const queue = compiledPolicy(obj)?.taskQueues[0];
    if (queue?.deletionPolicy === 'Delete') {
      if (!this.redis) throw new Error(`TaskQueue ${key} has deletionPolicy Delete but the operator runs without --redis; the finalizer stays until it can clean up`);
      const stream = queue.stream;
      const removed = await deleteQueueData(this.redis, { namespace: queue.namespace, stream, deadLetterStream: queue.deadLetterStream });
      this.opts.logger.info('task queue data deleted', { queue: key, stream, keys: removed });
      this.opts.events.record(obj, 'Normal', Reason.StreamDeleted, `deletionPolicy Delete: removed stream ${stream}, its consumer group, dead letters and side keys (${removed} keys).`);
    }
    await this.patchFinalizers(obj, finalizers.filter((f) => f !== TASK_QUEUE_FINALIZER));
    this.forget(key);
  }

  private async ensureFinalizer(obj: KubeObject): Promise<void> {
    const finalizers: string[] = (obj.metadata.finalizers as string[] | undefined) ?? [];
    if (finalizers.includes(TASK_QUEUE_FINALIZER)) return;
    await this.patchFinalizers(obj, [...finalizers, TASK_QUEUE_FINALIZER]);
  }

  private async patchFinalizers(obj: KubeObject, finalizers: string[]): Promise<void> {
    const { namespace, name } = splitKey(objectKey(obj));
    // With the resourceVersion the merge patch is a compare-and-set: a stale cache gets 409 and a retry,
    // never a finalizer list that drops someone else's entry.
    try {
      await this.opts.client.patch(resourcePath(this.kind, namespace, name), { metadata: { finalizers, resourceVersion: obj.metadata.resourceVersion } });
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
  }

  private forget(key: string): void {
    this.written.delete(key);
    for (const k of this.recommendations.keys()) if (k.startsWith(`${key}/`)) this.recommendations.delete(k);
  }
}

function isoNow(clock: Clock): string {
  return new Date(clock.wallNow()).toISOString().replace(/\.\d+Z$/, 'Z');
}
