import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { systemClock, type Clock } from '../../../lib/clock.ts';
import type { Plan, TaskQueuePlan } from '../../../lib/policy/index.ts';
import { producibleTaskQueues } from '../../../lib/policy/producible.ts';
import { silentLogger, type Logger } from '../../../lib/log.ts';
import { connectRedis } from '../../../lib/redis/connection.ts';
import { ReplicaAck } from './replica-ack.ts';
import type { Route } from '../local-api/router.ts';
import type { Deliverer } from './delivery.ts';
import { QueueError } from './errors.ts';
import { GrpcDelivery } from './grpc-delivery.ts';
import { HttpDelivery } from './http-delivery.ts';
import { QueueConsumer, type QueueCircuit } from './queue-consumer.ts';
import { QueueMetrics } from './queue-metrics.ts';
import { readQueueStats, type QueueStats } from '../../../lib/redis/queue-stats.ts';
import { checkLayoutVersion, migrateQueue } from '../../../lib/redis/queue-migration.ts';
import { TaskProducer, type Enqueued, type NewTask } from './producer.ts';
import { queueRoutes, type QueueApi } from './queue-routes.ts';
import { whenReady } from './when-ready.ts';
import { RedriveRunner, startQueueRedrive } from './dead-letter-redrive.ts';
import { checkRedriveRequest, readRedrive, type RedriveProgress, type RedriveRequest } from '../../../lib/redis/dead-letter-redrive.ts';
import type { RedriveRequestMessage } from '../../../lib/proto/discovery.ts';
import { randomUUID } from 'node:crypto';

export interface QueueFeatureDeps {
  /** Redis for task streams (`--redis`). */
  readonly redisUrl: string;
  /** This pod's name in every consumer group (the pod name; unique among live workers). */
  readonly consumerName: string;
  readonly registry: Registry;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** host:port of the app's HTTP server (`--app-http`), for `delivery.protocol: http`. */
  readonly appHttp?: string | undefined;
  /** host:port of the app's gRPC server (`--app-grpc`), for `delivery.protocol: grpc`. */
  readonly appGrpc?: string | undefined;
  /** The worker's circuit breaker: consumption pauses while it is open for a queue. */
  readonly circuit?: QueueCircuit | undefined;
  readonly idempotencyWindowMs?: number;
  /** Largest task payload accepted from a producer (default 1 MiB; a batch may be 16×). */
  readonly maxTaskBytes?: number;
  /** Replaces HTTP/gRPC delivery (benchmarks measure the consumer without the app hop). */
  readonly deliverer?: (plan: TaskQueuePlan) => Deliverer;
  /** How long one XREADGROUP blocks waiting for work (default 1 s). */
  readonly blockMs?: number;
  /** How often consumers look for tasks old-version producers wrote under the old key layout (default 10 s). */
  readonly legacySweepMs?: number;
}

interface Running {
  readonly signature: string;
  readonly consumer: QueueConsumer;
  readonly blocking: Redis;
  readonly redrive: RedriveRunner;
}

/**
 * The TaskQueue feature of the sidecar: producing on the local API for the app, and consuming
 * every TaskQueue that selects this pod. The sidecar gives it each new plan (`applyPlan`), serves
 * its routes on `--local-api`, and drains it on SIGTERM.
 */
export class QueueFeature implements QueueApi {
  private readonly d: QueueFeatureDeps;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly client: Redis;
  private readonly producer: TaskProducer;
  readonly metrics: QueueMetrics;
  private readonly running = new Map<string, Running>();
  /** Everything that can be produced to, by metadata.name (a name may exist in two namespaces). */
  private producible = new Map<string, TaskQueuePlan[]>();
  private readonly stopping = new Set<Promise<void>>();
  private draining = false;
  private started = new Set<string>();
  /** Queues (by id) whose data is known to be in the current key layout, and moves under way. */
  private readonly migratedQueues = new Set<string>();
  private readonly migrations = new Map<string, Promise<void>>();
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly enqueued = new Map<string, { enqueued: { inc(n?: number): void }; duplicate: { inc(n?: number): void } }>();

  constructor(deps: QueueFeatureDeps) {
    this.d = deps;
    this.clock = deps.clock ?? systemClock;
    this.log = (deps.logger ?? silentLogger).child({ feature: 'queue' });
    this.client = connectRedis({ url: deps.redisUrl, name: 'queue', commandTimeoutMs: 2_000 });
    this.producer = new TaskProducer(this.client, { idempotencyWindowMs: deps.idempotencyWindowMs, replicaAck: () => this.replicaAck() });
    this.metrics = new QueueMetrics(deps.registry);
    this.metrics.setStatsSource(() => this.allStats());
    this.client.once('ready', () => (this.connectedOnce = true));
    this.sweepTimer = setInterval(() => void this.sweepLegacy(), deps.legacySweepMs ?? 10_000);
    this.sweepTimer.unref();
  }

  private ack: ReplicaAck | undefined;

  /** The connection of `durability: Replicated` enqueues, opened when the first one is made. */
  private replicaAck(): ReplicaAck {
    // The command timeout covers the longest WAIT a TaskQueue may ask for (5 s) and the script before it.
    this.ack ??= new ReplicaAck(connectRedis({ url: this.d.redisUrl, name: 'queue-replicated', commandTimeoutMs: 7_000 }));
    return this.ack;
  }

  /** True once Redis has answered at least once since start (readiness: the queue can work at all). */
  connectedOnce = false;

  /**
   * Starts, stops and reconfigures consumers to match `plan.taskQueues` (the queues whose
   * selector matches this pod), and takes tasks for every queue the plan lets the app produce to.
   */
  applyPlan(plan: Plan): void {
    const byName = new Map<string, TaskQueuePlan[]>();
    for (const q of producibleTaskQueues(plan)) byName.set(q.name, [...(byName.get(q.name) ?? []), q]);
    this.producible = byName;
    if (this.draining) return;
    const wanted = new Map(plan.taskQueues.map((q) => [q.id, q]));
    for (const [id, r] of this.running) {
      const q = wanted.get(id);
      if (!q || signature(q) !== r.signature) this.stopConsumer(id, r);
    }
    for (const [id, q] of wanted) if (!this.running.has(id)) this.startConsumer(q);
  }

  /** Resolves once the Redis connection is up (or after `timeoutMs`); a readiness hint, never required. */
  ready(timeoutMs = 5_000): Promise<void> {
    return whenReady(this.client, timeoutMs);
  }

  routes(): Route[] {
    return queueRoutes(this);
  }

  /** Finds a queue the app may produce to; `namespace` settles a name used in two namespaces. */
  resolve(name: string, namespace?: string): TaskQueuePlan {
    const list = (this.producible.get(name) ?? []).filter((q) => namespace === undefined || q.namespace === namespace);
    if (list.length === 0) throw new QueueError('SLUICE_ERR_QUEUE_NOT_FOUND', `no TaskQueue named "${name}" in the active config`);
    if (list.length > 1) throw new QueueError('SLUICE_ERR_QUEUE_AMBIGUOUS', `TaskQueue "${name}" exists in several namespaces; add ?namespace=`);
    return list[0] as TaskQueuePlan;
  }

  async enqueue(queue: TaskQueuePlan, tasks: readonly NewTask[]): Promise<Enqueued[]> {
    if (!this.migratedQueues.has(queue.id)) {
      await this.migrated(queue).catch((err: unknown) => {
        throw new QueueError('SLUICE_ERR_QUEUE_UNAVAILABLE', `could not move ${queue.id} to the current Redis key layout: ${(err as Error).message}`, { cause: err });
      });
    }
    const out = await this.producer.enqueue(queue, tasks);
    let c = this.enqueued.get(queue.name);
    if (!c) {
      c = { enqueued: this.metrics.tasks.labels(queue.name, 'enqueued'), duplicate: this.metrics.tasks.labels(queue.name, 'duplicate') };
      this.enqueued.set(queue.name, c);
    }
    let dup = 0;
    for (const e of out) if (e.duplicate) dup++;
    if (out.length - dup > 0) c.enqueued.inc(out.length - dup);
    if (dup > 0) c.duplicate.inc(dup);
    return out;
  }

  stats(queue: TaskQueuePlan): Promise<QueueStats> {
    return readQueueStats(this.client, queue).catch((err: unknown) => {
      throw new QueueError('SLUICE_ERR_QUEUE_UNAVAILABLE', `could not read ${queue.id}: ${(err as Error).message}`, { cause: err });
    });
  }

  /**
   * Starts a dead-letter redrive of `queue` (recorded in Redis; a worker sidecar of the queue moves
   * it — this one at once when it is one). Refused while another is running.
   */
  async redrive(queue: TaskQueuePlan, req: RedriveRequest): Promise<RedriveProgress> {
    if (!this.migratedQueues.has(queue.id)) {
      await this.migrated(queue).catch((err: unknown) => {
        throw new QueueError('SLUICE_ERR_QUEUE_UNAVAILABLE', `could not move ${queue.id} to the current Redis key layout: ${(err as Error).message}`, { cause: err });
      });
    }
    const progress = await startQueueRedrive(this.client, queue, req, randomUUID(), this.clock.wallNow()).catch((err: unknown) => {
      if (err instanceof QueueError) throw err;
      throw new QueueError('SLUICE_ERR_QUEUE_UNAVAILABLE', `could not start a redrive of ${queue.id}: ${(err as Error).message}`, { cause: err });
    });
    this.running.get(queue.id)?.redrive.kick();
    return progress;
  }

  /**
   * The operator hands this worker a redrive (the TaskQueue's `sluice.dev/redrive` annotation):
   * start it under the operator's id, if this sidecar consumes the queue. A repeated hand-off of a
   * redrive already started is a no-op; the operator follows progress in Redis.
   */
  async redriveFromOperator(r: RedriveRequestMessage): Promise<void> {
    const running = [...this.running.values()].find((x) => x.consumer.plan.namespace === r.queueNamespace && x.consumer.plan.name === r.queueName);
    const log = { queue: `${r.queueNamespace}/${r.queueName}`, id: r.id };
    if (!running) {
      this.log.warn('the operator handed a redrive of a queue this sidecar does not consume; ignored', log);
      return;
    }
    let req: RedriveRequest | string;
    try {
      req = checkRedriveRequest(JSON.parse(r.json));
    } catch {
      req = 'is not JSON';
    }
    if (typeof req === 'string') {
      this.log.warn('the operator handed an invalid redrive; ignored', { ...log, error: req });
      return;
    }
    try {
      await startQueueRedrive(this.client, running.consumer.plan, req, r.id, this.clock.wallNow());
      this.log.info('dead-letter redrive started for the operator', log);
      running.redrive.kick();
    } catch (err) {
      this.log.warn('could not start the redrive the operator handed', { ...log, err });
    }
  }

  /** The queue's latest redrive (running or finished), or undefined. */
  redriveProgress(queue: TaskQueuePlan): Promise<RedriveProgress | undefined> {
    return readRedrive(this.client, queue).catch((err: unknown) => {
      throw new QueueError('SLUICE_ERR_QUEUE_UNAVAILABLE', `could not read the redrive of ${queue.id}: ${(err as Error).message}`, { cause: err });
    });
  }

  get maxTaskBytes(): number {
    return this.d.maxTaskBytes ?? 1 << 20;
  }

  get wallNow(): number {
    return this.clock.wallNow();
  }

  status(): object {
    return {
      redis: this.client.status,
      draining: this.draining,
      consumers: [...this.running.values()].map((r) => r.consumer.status()),
      producible: [...this.producible.values()].flat().map((q) => q.id),
    };
  }

  /**
   * SIGTERM: every consumer stops reading, finishes in-flight tasks within `graceMs` and hands
   * back the rest without counting an attempt. Producing keeps working until close().
   */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    const all = [...this.running.entries()].map(([id, r]) => {
      this.running.delete(id);
      return Promise.all([r.redrive.stop(), r.consumer.drain(graceMs)]).finally(() => r.blocking.disconnect());
    });
    await Promise.all([...all, ...this.stopping]);
  }

  /** Drains at once (no grace) and closes the Redis connections. */
  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    await this.drain(0);
    this.client.disconnect();
    this.ack?.disconnect();
  }

  private startConsumer(plan: TaskQueuePlan): void {
    const blockMs = this.d.blockMs ?? 1_000;
    // XREADGROUP BLOCK holds its connection: it gets its own, with a timeout longer than the block.
    const blocking = connectRedis({ url: this.d.redisUrl, name: `queue-read:${plan.id}`, commandTimeoutMs: blockMs + 2_000 });
    const consumer = new QueueConsumer({
      plan,
      client: this.client,
      blocking,
      consumerName: this.d.consumerName,
      deliverer: this.delivererFor(plan),
      clock: this.clock,
      logger: this.log,
      metrics: this.metrics,
      circuit: this.d.circuit,
      // Only the first consumer of a queue in this process may adopt entries left under our name.
      reclaimOwnAtStart: !this.started.has(plan.id),
      blockMs,
      migrated: () => this.migrated(plan),
    });
    const redriveCount = this.metrics.tasks.labels(plan.name, 'redriven');
    const redrive = new RedriveRunner({
      plan,
      client: this.client,
      owner: this.d.consumerName,
      clock: this.clock,
      logger: this.log,
      circuitOpen: () => this.d.circuit?.isOpen(plan) === true,
      onMoved: (n) => redriveCount.inc(n),
      migrated: () => this.migrated(plan),
    });
    this.started.add(plan.id);
    this.running.set(plan.id, { signature: signature(plan), consumer, blocking, redrive });
    consumer.start();
    redrive.start();
    this.log.info('consuming', { queue: plan.id, stream: plan.stream, group: plan.group, concurrency: plan.concurrency });
  }

  private stopConsumer(id: string, r: Running): void {
    this.running.delete(id);
    void r.redrive.stop();
    // A reconfigured or removed queue lets its in-flight tasks finish (up to their delivery timeout).
    const p = r.consumer.drain(r.consumer.plan.delivery.timeoutMs).finally(() => {
      r.blocking.disconnect();
      this.stopping.delete(p);
    });
    this.stopping.add(p);
  }

  private delivererFor(plan: TaskQueuePlan): Deliverer {
    if (this.d.deliverer) return this.d.deliverer(plan);
    if (plan.delivery.protocol === 'grpc') {
      if (!this.d.appGrpc) throw new QueueError('SLUICE_ERR_QUEUE_DELIVERY_FAILED', `${plan.id} delivers over gRPC but the sidecar has no --app-grpc`);
      return new GrpcDelivery(this.d.appGrpc, plan);
    }
    if (!this.d.appHttp) throw new QueueError('SLUICE_ERR_QUEUE_DELIVERY_FAILED', `${plan.id} delivers over HTTP but the sidecar has no --app-http`);
    return new HttpDelivery(this.d.appHttp, plan);
  }

  /**
   * Moves the queue's data out of the old key layout once per process (every sidecar that starts
   * does it; the steps are atomic and idempotent, so starting many at once is safe). Producing and
   * consuming wait for it.
   */
  private migrated(queue: TaskQueuePlan): Promise<void> {
    let p = this.migrations.get(queue.id);
    if (p === undefined) {
      p = this.migrate(queue);
      this.migrations.set(queue.id, p);
      p.then(() => this.migratedQueues.add(queue.id), () => this.migrations.delete(queue.id));
    }
    return p;
  }

  private async migrate(queue: TaskQueuePlan): Promise<void> {
    await checkLayoutVersion(this.client);
    const report = await migrateQueue(this.client, queue);
    if (report.stream !== 'none' || report.delayed > 0 || report.deadLetters > 0 || report.idempotencyRecords > 0) {
      this.log.info('moved queue data from the old Redis key layout', { queue: queue.id, ...report });
    }
  }

  /**
   * While old-version producers may still run (a rolling upgrade), tasks they append under the old
   * names are moved again now and then by the consumers of the queue; a pass costs three cheap
   * scripts when there is nothing to move.
   */
  private async sweepLegacy(): Promise<void> {
    for (const r of this.running.values()) {
      const plan = r.consumer.plan;
      if (!this.migratedQueues.has(plan.id)) continue;
      try {
        const report = await migrateQueue(this.client, plan);
        if (report.entries > 0 || report.delayed > 0 || report.deadLetters > 0) this.log.info('moved tasks written under the old Redis key layout', { queue: plan.id, ...report });
      } catch (err) {
        this.log.debug('legacy layout sweep failed', { queue: plan.id, err });
      }
    }
  }

  private async allStats(): Promise<readonly QueueStats[]> {
    const queues = new Map<string, TaskQueuePlan>();
    for (const list of this.producible.values()) for (const q of list) queues.set(q.id, q);
    for (const r of this.running.values()) queues.set(r.consumer.plan.id, r.consumer.plan);
    return Promise.all([...queues.values()].map((q) => readQueueStats(this.client, q)));
  }
}

/** Two plans of a queue that compile from the same spec need no restart of its consumer. */
function signature(q: TaskQueuePlan): string {
  return `${q.id}\n${JSON.stringify(q.source)}`;
}
