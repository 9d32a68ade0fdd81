import type { Redis } from 'ioredis';
import type { Clock } from '../../../lib/clock.ts';
import type { AdaptiveConcurrencyPlan } from '../../../lib/policy/adaptive.ts';
import { GradientLimit } from '../adaptive/gradient-limit.ts';
import type { ConcurrencyLimit } from '../adaptive/concurrency-limit.ts';
import type { TaskQueuePlan } from '../../../lib/policy/index.ts';
import type { Logger } from '../../../lib/log.ts';
import { ConsumptionPacer } from './consumption-pacer.ts';
import type { Deliverer } from './delivery.ts';
import type { QueueMetrics } from './queue-metrics.ts';
import { MAX_TRIM_PER_PASS, trimRetention } from './retention-trimmer.ts';
import { decideSettlement, isExhausted, type DeliveryOutcome, type Settlement } from './retry-decision.ts';
import { DEAD_LETTER_TRIM, PROMOTE, RECLAIM, RECLAIM_OWN, REFRESH, runScript } from './scripts.ts';
import { SettleBatcher, type SettleOp, type SettleResult } from './settle-batcher.ts';
import { decodeEntry, encodeFields, type Task } from './task.ts';
import { queueKeys } from '../../../lib/redis/key-layout.ts';
import { WakeSignal } from './wake-signal.ts';
import { whenReady } from './when-ready.ts';

/** The worker's circuit breaker, as the queue sees it: consumption pauses while it is open. */
export interface QueueCircuit {
  isOpen(queue: TaskQueuePlan): boolean;
  /** Delivery results, for a breaker that trips on them (the calls bypass the inbound listener). */
  onResult?(queue: TaskQueuePlan, result: { readonly ok: boolean; readonly durationMs: number; readonly reason: string | undefined; readonly status: number | undefined }): void;
}

export interface QueueConsumerDeps {
  readonly plan: TaskQueuePlan;
  /** Shared command connection (short timeouts). */
  readonly client: Redis;
  /** This consumer's own connection for the blocking XREADGROUP (a longer command timeout). */
  readonly blocking: Redis;
  readonly consumerName: string;
  readonly deliverer: Deliverer;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: QueueMetrics;
  readonly circuit?: QueueCircuit | undefined;
  /** Take back entries left pending under this consumer name by a previous incarnation. */
  readonly reclaimOwnAtStart?: boolean;
  readonly blockMs?: number;
  readonly random?: () => number;
  /** Resolves once the queue's data is in the current key layout (see lib/redis/queue-migration.ts). */
  readonly migrated?: () => Promise<void>;
}

export type ConsumerState = 'starting' | 'running' | 'paused' | 'draining' | 'stopped';

type Decision = Settlement | { readonly kind: 'release' };

interface Flight {
  readonly task: Task;
  /** Counted for the enqueue→delivery histogram only on a first read, not on a reclaim. */
  readonly fresh: boolean;
  claimedAt: number;
  lost: boolean;
}

/** Entries asked for in one XREADGROUP at most. */
const MAX_READ = 1_000;
/** Due delayed tasks moved per promote call; a full call runs again at once. */
const PROMOTE_LIMIT = 500;
/** The longest the promoter sleeps, so delays set by other sidecars are noticed promptly. */
const PROMOTE_IDLE_MS = 250;
const TRIM_EVERY_MS = 1_000;

/**
 * One TaskQueue consumed by this sidecar: read with XREADGROUP into a bounded in-flight set
 * (`concurrency`), deliver to the app, settle each task (ack / retry after backoff / dead-letter)
 * and keep the claims of slow tasks fresh. Around that loop: the reclaimer takes over entries of
 * consumers that went silent (XAUTOCLAIM after `visibilityTimeout`), the promoter moves due
 * delayed and backed-off tasks into the stream, and the trimmer applies guarded retention.
 *
 * Everything that must survive this process lives in Redis: a task is acked only after the app's
 * success, a retry's due time is in the delay set, and a crash leaves entries pending for others.
 */
export class QueueConsumer {
  readonly plan: TaskQueuePlan;
  private readonly d: QueueConsumerDeps;
  private readonly log: Logger;
  private readonly settler: SettleBatcher;
  private readonly pacer: ConsumptionPacer;
  private readonly inFlight = new Map<string, Flight>();
  private readonly wake = new WakeSignal();
  /**
   * The promoter's own signal: woken by a stop and by a settle that put a task in the delay set,
   * not by every finished delivery (sharing `wake` ran a PROMOTE script per delivered task).
   */
  private readonly promoteWake = new WakeSignal();
  /** Aborts deliveries still running when the drain grace period ends. */
  private readonly cutoff = new AbortController();
  private readonly blockMs: number;
  private readonly keys;
  private readonly counts;
  /** Tasks read and not yet answered by the app: what `concurrency` bounds. */
  private atApp = 0;
  /** adaptiveConcurrency: the limit that replaces the fixed `concurrency`. */
  private readonly adaptive: ConcurrencyLimit | undefined;
  private stateValue: ConsumerState = 'starting';
  private stopping = false;
  private timers: NodeJS.Timeout[] = [];
  private refreshTimer: NodeJS.Timeout | undefined;
  private loopDone: Promise<void> = Promise.resolve();
  private reclaimCursor = '0-0';
  private lastError: string | undefined;
  private groupRecreated = 0;

  constructor(deps: QueueConsumerDeps) {
    this.d = deps;
    this.plan = deps.plan;
    this.log = deps.logger.child({ queue: deps.plan.id, consumer: deps.consumerName });
    this.settler = new SettleBatcher(deps.client, deps.plan, deps.consumerName, deps.clock, this.log);
    this.pacer = new ConsumptionPacer(deps.plan.rateLimit, deps.clock);
    this.blockMs = deps.blockMs ?? 1_000;
    this.adaptive = deps.plan.adaptiveConcurrency && new GradientLimit(queueLimitPlan(deps.plan), deps.clock.now(), deps.random);
    this.keys = queueKeys(deps.plan);
    // Label children bound once: the hot path only increments.
    const t = deps.metrics.tasks;
    const q = deps.plan.name;
    this.counts = {
      acked: t.labels(q, 'acked'),
      retried: t.labels(q, 'retried'),
      dead: t.labels(q, 'dead_lettered'),
      late: t.labels(q, 'late'),
      released: t.labels(q, 'released'),
      reclaimed: t.labels(q, 'reclaimed'),
      lost: t.labels(q, 'lost'),
      inFlight: deps.metrics.inFlight.labels(q),
      latency: deps.metrics.enqueueToDelivery.labels(q),
      ok: deps.metrics.deliveryDuration.labels(q, 'ok'),
      failed: deps.metrics.deliveryDuration.labels(q, 'failed'),
      timeout: deps.metrics.deliveryDuration.labels(q, 'timeout'),
      trimmed: deps.metrics.trimmed.labels(q),
      trimHeld: deps.metrics.trimHeld.labels(q),
      deadTrimmed: t.labels(q, 'dead_letter_expired'),
      limit: deps.metrics.concurrencyLimit.labels(q),
    };
    this.counts.limit.set(this.concurrency);
  }

  get state(): ConsumerState {
    return this.stateValue;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  start(): void {
    const vt = this.plan.visibilityTimeoutMs;
    // Refresh well before the timeout so one slow refresh round cannot let a live claim lapse.
    this.refreshTimer = setInterval(() => void this.refreshClaims(), Math.max(100, Math.floor(vt / 3)));
    this.timers.push(setInterval(() => void this.reclaim(), Math.min(5_000, Math.max(100, Math.floor(vt / 2)))));
    if (this.plan.maxLen !== undefined) this.timers.push(setInterval(() => void this.trim(), TRIM_EVERY_MS));
    if (this.keys.deadLetter !== undefined && (this.plan.deadLetterMaxLen !== undefined || this.plan.deadLetterMaxAgeMs !== undefined)) {
      this.timers.push(setInterval(() => void this.trimDeadLetters(), TRIM_EVERY_MS));
    }
    this.loopDone = this.run();
  }

  /**
   * Stops reading, lets in-flight tasks finish within `graceMs`, then hands back whatever is still
   * running — appended again with the same attempt number, so the shutdown costs it no attempt.
   */
  async drain(graceMs: number): Promise<void> {
    if (this.stopping) return this.loopDone;
    this.stopping = true;
    this.stateValue = 'draining';
    for (const t of this.timers) clearInterval(t);
    this.wake.notify();
    this.promoteWake.notify();
    // Abort the blocking read; the command connection stays up to settle what is in flight.
    this.d.blocking.disconnect();
    await this.loopDone;
    const deadline = this.d.clock.now() + graceMs;
    while (this.inFlight.size > 0 && this.d.clock.now() < deadline) await this.wake.wait(Math.min(50, deadline - this.d.clock.now()));
    if (this.inFlight.size > 0) {
      this.log.info('drain grace over; releasing unfinished tasks', { tasks: this.inFlight.size });
      this.cutoff.abort();
      const until = this.d.clock.now() + 2_000;
      while (this.inFlight.size > 0 && this.d.clock.now() < until) await this.wake.wait(50);
    }
    clearInterval(this.refreshTimer);
    await this.forgetSelfIfIdle();
    await this.d.deliverer.close().catch(() => {});
    this.stateValue = 'stopped';
  }

  status(): object {
    return {
      queue: this.plan.id,
      stream: this.plan.stream,
      key: this.keys.stream,
      group: this.plan.group,
      consumer: this.d.consumerName,
      state: this.stateValue,
      inFlight: this.inFlight.size,
      concurrency: this.concurrency,
      ...(this.adaptive ? { adaptiveConcurrency: { ...this.plan.adaptiveConcurrency, minRttMs: this.adaptive.minRttMs } } : {}),
      settleBacklog: this.settler.backlog,
      groupRecreated: this.groupRecreated,
      lastError: this.lastError,
    };
  }

  // ── reading ────────────────────────────────────────────────────────────────────────────────────

  private async run(): Promise<void> {
    let failures = 0;
    await Promise.all([whenReady(this.d.client, 2_000), whenReady(this.d.blocking, 2_000)]);
    // Nothing is read before the queue's old-layout data has moved: its pending entries must keep
    // their group and delivery counts, which only the first move (a RENAME) carries.
    for (let tries = 0; this.d.migrated && !this.stopping; tries++) {
      try {
        await this.d.migrated();
        break;
      } catch (err) {
        this.fail('migrate', err);
        await this.wake.wait(Math.min(5_000, 100 * 2 ** Math.min(tries, 6)));
      }
    }
    await this.ensureGroup().catch(() => {});
    void this.promoteLoop();
    if (this.d.reclaimOwnAtStart) await this.reclaimOwn().catch((err) => this.fail('reclaim-own', err));
    while (!this.stopping) {
      if (this.circuitOpen()) {
        this.stateValue = 'paused';
        await this.wake.wait(100);
        continue;
      }
      this.stateValue = 'running';
      const free = this.freeSlots();
      if (free <= 0) {
        await this.wake.wait(1_000);
        continue;
      }
      const want = this.pacer.take(Math.min(free, MAX_READ));
      if (want === 0) {
        await this.wake.wait(this.pacer.waitMs());
        continue;
      }
      let tasks: Task[];
      try {
        tasks = await this.read(want);
        failures = 0;
      } catch (err) {
        this.pacer.refund(want);
        if (this.stopping) break;
        failures++;
        if (isNoGroup(err)) {
          await this.ensureGroup().catch(() => {});
        } else {
          this.fail('read', err);
          // Back off while Redis is away; a reconnect makes the next read succeed.
          await this.wake.wait(Math.min(2_000, 50 * 2 ** Math.min(failures, 6)));
        }
        continue;
      }
      this.pacer.refund(want - tasks.length);
      if (tasks.length > 0) this.dispatch(tasks, true);
    }
  }

  private async read(count: number): Promise<Task[]> {
    const reply = (await this.d.blocking.callBuffer(
      'XREADGROUP', 'GROUP', this.plan.group, this.d.consumerName, 'COUNT', count, 'BLOCK', this.blockMs, 'STREAMS', this.keys.stream, '>',
    )) as [Buffer, [Buffer, Buffer[] | null][]][] | null;
    if (!reply || !reply[0]) return [];
    const out: Task[] = [];
    for (const [id, fields] of reply[0][1]) if (fields) out.push(decodeEntry(id.toString('latin1'), fields, 1));
    return out;
  }

  /**
   * Creates the group at id 0 when it is missing: on first start that delivers everything produced
   * before any worker existed; after a Redis that lost the group, it re-delivers the retained
   * history — duplicates the app absorbs with the task id, rather than lost tasks.
   */
  private async ensureGroup(): Promise<void> {
    try {
      await this.d.client.call('XGROUP', 'CREATE', this.keys.stream, this.plan.group, '0', 'MKSTREAM');
      if (this.stateValue !== 'starting') {
        this.groupRecreated++;
        this.log.warn('consumer group was missing and has been re-created from the start of the stream');
      }
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('BUSYGROUP')) return;
      this.fail('ensure-group', err);
      throw err;
    }
  }

  // ── delivering ─────────────────────────────────────────────────────────────────────────────────

  private dispatch(tasks: readonly Task[], fresh: boolean): void {
    const now = this.d.clock.now();
    const batch: Flight[] = [];
    for (const task of tasks) {
      if (this.inFlight.has(task.entryId)) continue;
      const flight: Flight = { task, fresh, claimedAt: now, lost: false };
      this.inFlight.set(task.entryId, flight);
      batch.push(flight);
    }
    this.atApp += batch.length;
    this.counts.inFlight.set(this.inFlight.size);
    const size = this.plan.delivery.batchSize;
    for (let i = 0; i < batch.length; i += size) void this.deliver(batch.slice(i, i + size));
  }

  private async deliver(flights: readonly Flight[]): Promise<void> {
    // Tasks read just before the circuit opened wait (their claims kept fresh) instead of failing.
    while (this.circuitOpen() && !this.cutoff.signal.aborted) await this.wake.wait(100);
    let outcomes: DeliveryOutcome[];
    const started = this.d.clock.now();
    if (this.cutoff.signal.aborted) {
      this.atApp -= flights.length;
      outcomes = flights.map(() => ({ ok: false, permanent: false, status: undefined, reason: 'aborted' }));
    } else {
      const wall = this.d.clock.wallNow();
      for (const f of flights) if (f.fresh) this.counts.latency.observe(Math.max(0, wall - f.task.availableAt) / 1000);
      try {
        outcomes = await this.d.deliverer.deliver(flights.map((f) => f.task), this.cutoff.signal);
      } finally {
        this.atApp -= flights.length;
        this.wake.notify();
      }
      const first = outcomes[0];
      const seconds = (this.d.clock.now() - started) / 1000;
      const okAll = outcomes.every((o) => o.ok);
      (okAll ? this.counts.ok : first && !first.ok && first.reason === 'timeout' ? this.counts.timeout : this.counts.failed).observe(seconds);
      this.d.circuit?.onResult?.(this.plan, { ok: okAll, durationMs: seconds * 1000, reason: first && !first.ok ? first.reason : undefined, status: first?.status });
      if (this.adaptive) {
        this.adaptive.onSample(this.d.clock.now(), seconds * 1000, started, outcomes.some(isOverloadAnswer));
        this.counts.limit.set(this.adaptive.limit);
      }
    }
    await this.settle(flights, flights.map((f, i) => this.decide(f.task, outcomes[i] as DeliveryOutcome)));
  }

  private decide(task: Task, outcome: DeliveryOutcome): Decision {
    // Cut off by the drain: not the task's fault, so it goes back with the same attempt.
    if (!outcome.ok && outcome.reason === 'aborted' && this.cutoff.signal.aborted) return { kind: 'release' };
    return decideSettlement(outcome, task.attempt, this.plan.retry, this.d.random);
  }

  /**
   * Settles a delivered batch: one settle promise for the batch, and the bookkeeping (in-flight
   * gauge, acked counter, waking the reader) once per batch rather than once per task.
   */
  private async settle(flights: readonly Flight[], decisions: readonly Decision[]): Promise<void> {
    const ops = flights.map((f, i) => this.opFor(f.task, decisions[i] as Decision));
    const results = await this.settler.settleAll(ops, this.d.clock.now() + this.plan.visibilityTimeoutMs);
    let acked = 0;
    for (let i = 0; i < flights.length; i++) {
      const flight = flights[i] as Flight;
      const decision = decisions[i] as Decision;
      const result = results[i] as SettleResult;
      this.inFlight.delete(flight.task.entryId);
      if (decision.kind === 'ack' && result === 'settled') acked++;
      else this.finish(flight, decision, result);
    }
    if (acked > 0) this.counts.acked.inc(acked);
    this.counts.inFlight.set(this.inFlight.size);
    this.wake.notify();
  }

  private opFor(task: Task, decision: Decision): SettleOp {
    switch (decision.kind) {
      case 'ack':
        if (task.orderingKey !== undefined) return { op: 'a', entryId: task.entryId, orderingKey: task.orderingKey, taskId: task.id };
        return { op: 'A', entryId: task.entryId };
      case 'retry':
        return { op: 'R', entryId: task.entryId, taskId: task.id, delayMs: decision.delayMs, fields: encodeFields(task, decision.nextAttempt, decision.reason) };
      case 'release':
        return { op: 'L', entryId: task.entryId, fields: encodeFields(task, task.attempt, task.lastError) };
      case 'dead':
        if (!this.plan.deadLetterStream) {
          if (task.orderingKey !== undefined) return { op: 'a', entryId: task.entryId, orderingKey: task.orderingKey, taskId: task.id };
          return { op: 'A', entryId: task.entryId };
        }
        return {
          ...(task.orderingKey !== undefined ? { op: 'd' as const, orderingKey: task.orderingKey, taskId: task.id } : { op: 'D' as const }),
          entryId: task.entryId,
          fields: [
            ...encodeFields(task, task.attempt),
            'queue', this.plan.id,
            'originalId', task.id,
            'attempts', String(task.attempt),
            'error', decision.reason,
            'cause', decision.cause,
            'consumer', this.d.consumerName,
            'failedAt', new Date(this.d.clock.wallNow()).toISOString(),
          ],
        };
    }
  }

  /** Counts and logs one settled task other than a plain ack (those are counted per batch). */
  private finish(flight: Flight, decision: Decision, result: SettleResult): void {
    if (result === 'late') {
      this.counts.late.inc();
      this.log.info('late result for a task another consumer reclaimed; not acknowledged', { task: flight.task.id, entry: flight.task.entryId });
      return;
    }
    if (result === 'failed') {
      // Still pending in Redis: it will be reclaimed and delivered again.
      this.log.warn('could not settle task; leaving it pending for reclaim', { task: flight.task.id, outcome: decision.kind });
      return;
    }
    if (decision.kind === 'ack') this.counts.acked.inc();
    else if (decision.kind === 'retry') {
      this.counts.retried.inc();
      // A short backoff is due before the promoter's idle sleep ends: let it look again now.
      if (decision.delayMs > 0) this.promoteWake.notify();
    }
    else if (decision.kind === 'release') this.counts.released.inc();
    else {
      this.counts.dead.inc();
      this.log.warn('task dead-lettered', { task: flight.task.id, attempts: flight.task.attempt, reason: decision.reason, cause: decision.cause, deadLetter: this.plan.deadLetterStream ?? null });
    }
  }

  // ── claims ─────────────────────────────────────────────────────────────────────────────────────

  /** Resets the idle time of tasks still being worked on, so no one reclaims a live worker's task. */
  private async refreshClaims(): Promise<void> {
    const now = this.d.clock.now();
    const stale: Flight[] = [];
    const third = this.plan.visibilityTimeoutMs / 3;
    for (const f of this.inFlight.values()) if (!f.lost && now - f.claimedAt >= third) stale.push(f);
    if (stale.length === 0) return;
    try {
      const flags = (await runScript(this.d.client, REFRESH, [this.keys.stream], [this.plan.group, this.d.consumerName, ...stale.map((f) => f.task.entryId)])) as number[];
      stale.forEach((f, i) => {
        if (flags[i] === 1) f.claimedAt = now;
        else f.lost = true;
      });
    } catch (err) {
      this.fail('refresh', err);
    }
  }

  /** Takes over entries whose consumer has been silent longer than the visibility timeout. */
  private async reclaim(): Promise<void> {
    if (this.stopping || this.circuitOpen()) return;
    const free = this.freeSlots();
    if (free <= 0) return;
    try {
      const [next, entries, counts, deleted] = (await runScript(
        this.d.client, RECLAIM, [this.keys.stream],
        [this.plan.group, this.d.consumerName, this.plan.visibilityTimeoutMs, this.reclaimCursor, Math.min(free, 100)], true,
      )) as [Buffer, [Buffer, Buffer[]][], number[], number];
      this.reclaimCursor = next.toString('latin1');
      if (deleted > 0) {
        this.counts.lost.inc(deleted);
        this.log.error('pending entries were deleted from the stream before being acknowledged', { count: deleted });
      }
      this.takeOver(entries, counts);
    } catch (err) {
      if (isNoGroup(err)) return;
      this.fail('reclaim', err);
    }
  }

  private async reclaimOwn(): Promise<void> {
    const [entries, counts] = (await runScript(this.d.client, RECLAIM_OWN, [this.keys.stream], [this.plan.group, this.d.consumerName, this.plan.concurrency], true)) as [
      [Buffer, Buffer[]][], number[],
    ];
    this.takeOver(entries, counts);
  }

  private takeOver(entries: readonly [Buffer, Buffer[]][], counts: readonly number[]): void {
    const tasks: Task[] = [];
    entries.forEach(([id, fields], i) => {
      const entryId = id.toString('latin1');
      if (this.inFlight.has(entryId)) return; // ours and still running: the claim just got fresher
      const task = decodeEntry(entryId, fields, Number(counts[i] ?? 2));
      this.counts.reclaimed.inc();
      this.log.info('reclaimed task from a silent consumer', { task: task.id, attempt: task.attempt });
      if (isExhausted(task.attempt, this.plan.retry)) {
        // Every delivery of it ended in a crash: a poison task. Stop feeding it to workers.
        const flight: Flight = { task, fresh: false, claimedAt: this.d.clock.now(), lost: false };
        this.inFlight.set(entryId, flight);
        void this.settle([flight], [{ kind: 'dead', reason: 'the consumer died while holding it on every attempt', cause: 'exhausted' }]);
        return;
      }
      tasks.push(task);
    });
    if (tasks.length > 0) this.dispatch(tasks, false);
  }

  // ── delay set and retention ────────────────────────────────────────────────────────────────────

  private async promoteLoop(): Promise<void> {
    while (!this.stopping) {
      let wait = PROMOTE_IDLE_MS;
      try {
        const [moved, nextDue] = (await runScript(this.d.client, PROMOTE, [
          this.keys.stream, this.keys.delayed, this.keys.delayedTasks, this.keys.seq, this.keys.orderActive, this.keys.orderWaiting,
        ], [PROMOTE_LIMIT])) as [number, number];
        if (moved >= PROMOTE_LIMIT) wait = 0;
        else if (nextDue >= 0) wait = Math.min(PROMOTE_IDLE_MS, Math.max(1, nextDue));
      } catch (err) {
        this.fail('promote', err);
        wait = 1_000;
      }
      await this.promoteWake.wait(wait);
    }
  }

  private async trim(): Promise<void> {
    try {
      const r = await trimRetention(this.d.client, this.plan);
      if (r.trimmed > 0) this.counts.trimmed.inc(r.trimmed);
      this.counts.trimHeld.set(r.held);
    } catch (err) {
      this.fail('trim', err);
    }
  }

  /** Dead-letter retention (deadLetter.maxLen / maxAge): plain bounds, nothing there is owed to anyone. */
  private async trimDeadLetters(): Promise<void> {
    try {
      const n = Number(await runScript(this.d.client, DEAD_LETTER_TRIM, [this.keys.deadLetter as string], [this.plan.deadLetterMaxLen ?? 0, this.plan.deadLetterMaxAgeMs ?? 0, MAX_TRIM_PER_PASS]));
      if (n > 0) this.counts.deadTrimmed.inc(n);
    } catch (err) {
      this.fail('trim-dead-letters', err);
    }
  }

  // ── helpers ────────────────────────────────────────────────────────────────────────────────────

  /**
   * `concurrency` bounds the tasks at the app. A task whose answer is in but whose settle is still
   * on its way to Redis no longer occupies the app, so the next read need not wait for that round
   * trip; settling tasks are bounded too (one more `concurrency`), so a slow Redis stops reading.
   */
  private freeSlots(): number {
    const c = this.concurrency;
    return Math.min(c - this.atApp, 2 * c - this.inFlight.size);
  }

  /** Deliveries allowed at the app now: fixed, or where the adaptive limit stands. */
  get concurrency(): number {
    return this.adaptive ? this.adaptive.limit : this.plan.concurrency;
  }

  private circuitOpen(): boolean {
    return this.d.circuit?.isOpen(this.plan) === true;
  }

  /** Unregisters this consumer from the group on a clean exit, but only with nothing pending. */
  private async forgetSelfIfIdle(): Promise<void> {
    try {
      const pending = (await this.d.client.call('XPENDING', this.keys.stream, this.plan.group, '-', '+', 1, this.d.consumerName)) as unknown[];
      if (pending.length === 0) await this.d.client.call('XGROUP', 'DELCONSUMER', this.keys.stream, this.plan.group, this.d.consumerName);
    } catch {
      // Best effort: a consumer left behind is harmless (XAUTOCLAIM never needs it).
    }
  }

  private fail(step: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (message !== this.lastError) this.log.warn(`queue ${step} failed`, { err });
    this.lastError = message;
  }
}

/** The worker said it is too busy, or took too long: the adaptive limit backs off. */
function isOverloadAnswer(o: DeliveryOutcome): boolean {
  if (o.ok) return false;
  return o.status === 429 || o.status === 503 || o.reason === 'timeout' || o.reason === 'grpc RESOURCE_EXHAUSTED' || o.reason === 'grpc UNAVAILABLE';
}

/**
 * The gradient controller's settings for a worker: between adaptiveConcurrency.min and max,
 * starting at `concurrency`. Tasks are slower than calls, so the no-load latency is measured
 * from fewer deliveries and less often.
 */
function queueLimitPlan(plan: TaskQueuePlan): AdaptiveConcurrencyPlan {
  const a = plan.adaptiveConcurrency!;
  return {
    algorithm: 'Gradient',
    minLimit: a.min,
    maxLimit: a.max,
    initialLimit: Math.min(a.max, Math.max(a.min, plan.concurrency)),
    sampleWindowMs: 100,
    minRttIntervalMs: 60_000,
    minRttSamples: 5,
    tolerance: 0.5,
    latencyThresholdMs: undefined,
    backoff: 0.9,
  };
}

function isNoGroup(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOGROUP');
}
