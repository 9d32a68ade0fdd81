import type { Redis } from 'ioredis';
import type { Clock } from '../../../lib/clock.ts';
import type { Logger } from '../../../lib/log.ts';
import type { TaskQueuePlan } from '../../../lib/policy/index.ts';
import { queueKeys } from '../../../lib/redis/key-layout.ts';
import { QueueError } from './errors.ts';
import type { RedriveRequest } from './redrive-request.ts';
import { REDRIVE_START, REDRIVE_STEP, runScript } from './scripts.ts';
import { WakeSignal } from './wake-signal.ts';

/** A redrive as `GET/POST …/dead-letters:redrive` and the TaskQueue status show it. */
export interface RedriveProgress {
  readonly id: string;
  /** running, or done (every dead letter it covered was looked at, or `max` was reached). */
  readonly state: string;
  readonly moved: number;
  /** Dead letters looked at and left in place because the filter did not match them. */
  readonly skipped: number;
  readonly max: number;
  readonly perSecond: number;
  readonly error: string;
  readonly cause: string;
  readonly startedAt: string;
  readonly finishedAt: string | undefined;
  /** The sidecar moving it now ('' between owners). */
  readonly owner: string;
}

/** A runner that stops renewing (killed, or its worker's circuit is open) is taken over after this. */
export const REDRIVE_LEASE_MS = 5_000;
const IDLE_POLL_MS = 1_000;

/**
 * Records a new redrive in the queue's redrive hash; any worker sidecar of the queue then moves
 * it (see RedriveRunner). Refused while another redrive of the queue is running: its progress is
 * in the error's answer instead.
 */
export async function startRedrive(client: Redis, plan: TaskQueuePlan, req: RedriveRequest, id: string, wallNow: number): Promise<RedriveProgress> {
  const keys = queueKeys(plan);
  if (!keys.deadLetter) throw new QueueError('SLUICE_ERR_QUEUE_NO_DEAD_LETTER', `${plan.id} has no spec.deadLetter.stream: there is nothing to redrive`);
  const [flat, started] = (await runScript(client, REDRIVE_START, [keys.deadLetter, keys.redrive], [id, req.max, req.perSecond, req.error, req.cause, new Date(wallNow).toISOString()])) as [string[], number];
  const progress = toProgress(flat);
  if (started !== 1) throw Object.assign(new QueueError('SLUICE_ERR_QUEUE_REDRIVE_RUNNING', `a redrive of ${plan.id} is already running (${progress.moved} moved so far)`), { progress });
  return progress;
}

/** The queue's latest redrive, or undefined when it never had one. */
export async function readRedrive(client: Redis, plan: TaskQueuePlan): Promise<RedriveProgress | undefined> {
  const flat = (await client.call('HGETALL', queueKeys(plan).redrive)) as string[];
  return flat.length === 0 ? undefined : toProgress(flat);
}

function toProgress(flat: readonly string[]): RedriveProgress {
  const h: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i] as string] = flat[i + 1] as string;
  return {
    id: h.id ?? '',
    state: h.state ?? 'idle',
    moved: Number(h.moved ?? 0),
    skipped: Number(h.skipped ?? 0),
    max: Number(h.max ?? 0),
    perSecond: Number(h.perSecond ?? 0),
    error: h.error ?? '',
    cause: h.cause ?? '',
    startedAt: h.startedAt ?? '',
    finishedAt: h.finishedAt,
    owner: h.owner ?? '',
  };
}

export interface RedriveRunnerDeps {
  readonly plan: TaskQueuePlan;
  readonly client: Redis;
  /** This sidecar's consumer name: the redrive's lease holder while it moves dead letters. */
  readonly owner: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The worker's circuit: a redrive into an app that is failing would only refill the dead letters. */
  readonly circuitOpen: () => boolean;
  readonly onMoved?: (n: number) => void;
  /** Resolves once the queue's data is in the current key layout: dead letters go back only then. */
  readonly migrated?: () => Promise<void>;
}

/**
 * Moves a running redrive forward from a worker sidecar of the queue, paced to its `perSecond`.
 * Every worker runs one; the lease in the redrive hash lets one move it at a time, and a worker
 * that dies (or whose circuit stays open) is replaced once its lease lapses. Each step is one
 * script (REDRIVE_STEP) that moves dead letters and the cursor together, which is what makes the
 * redrive resumable without duplicates.
 */
export class RedriveRunner {
  private readonly d: RedriveRunnerDeps;
  private readonly keys;
  private readonly wake = new WakeSignal();
  private stopped = false;
  private done: Promise<void> = Promise.resolve();
  private perSecond = 1;

  constructor(deps: RedriveRunnerDeps) {
    this.d = deps;
    this.keys = queueKeys(deps.plan);
  }

  start(): void {
    if (!this.keys.deadLetter) return;
    this.done = this.run();
  }

  /** A redrive was just started here: look now rather than at the next poll. */
  kick(): void {
    this.wake.notify();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake.notify();
    await this.done;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (this.d.migrated && !this.stopped) {
      try {
        await this.d.migrated();
        break;
      } catch {
        await this.wake.wait(1_000);
      }
    }
    while (!this.stopped) {
      if (this.d.circuitOpen()) {
        await this.wake.wait(100);
        continue;
      }
      // A tenth of a second's worth per step: smooth pacing, few round trips.
      const batch = Math.max(1, Math.min(500, Math.ceil(this.perSecond / 10)));
      let wait = IDLE_POLL_MS;
      try {
        const [state, moved, , perSecond] = (await runScript(this.d.client, REDRIVE_STEP, [
          this.keys.stream, this.keys.deadLetter as string, this.keys.redrive, this.keys.seq, this.keys.orderActive, this.keys.orderWaiting, this.keys.orderTasks,
        ], [
          this.d.owner, REDRIVE_LEASE_MS, batch, Math.min(1_000, batch * 10), new Date(this.d.clock.wallNow()).toISOString(),
        ])) as [string, number, string, number];
        failures = 0;
        if (perSecond > 0) this.perSecond = perSecond;
        if (moved > 0) this.d.onMoved?.(moved);
        if (state === 'running') wait = Math.ceil((moved * 1000) / this.perSecond);
        else if (state === 'busy') wait = REDRIVE_LEASE_MS / 2;
        if (state === 'done' && moved > 0) this.d.logger.info('dead-letter redrive finished', { queue: this.d.plan.id });
      } catch (err) {
        failures++;
        if (failures === 1) this.d.logger.warn('dead-letter redrive step failed', { queue: this.d.plan.id, err });
        wait = Math.min(5_000, 100 * 2 ** Math.min(failures, 6));
      }
      await this.wake.wait(wait);
    }
  }
}
