import type { Redis } from 'ioredis';
import type { Clock } from '../../../lib/clock.ts';
import type { Logger } from '../../../lib/log.ts';
import type { TaskQueuePlan } from '../../../lib/policy/index.ts';
import { queueKeys } from '../../../lib/redis/key-layout.ts';
import { QueueError } from './errors.ts';
import { startRedrive, type RedriveProgress, type RedriveRequest } from '../../../lib/redis/dead-letter-redrive.ts';
import { REDRIVE_STEP, runScript } from './scripts.ts';
import { WakeSignal } from './wake-signal.ts';

/** A runner that stops renewing (killed, or its worker's circuit is open) is taken over after this. */
export const REDRIVE_LEASE_MS = 5_000;
const IDLE_POLL_MS = 1_000;

/**
 * Starts a redrive of `plan` (lib/redis/dead-letter-redrive.ts), as the local API's errors say it:
 * no dead-letter stream, or another redrive running (with its progress in the answer).
 */
export async function startQueueRedrive(client: Redis, plan: TaskQueuePlan, req: RedriveRequest, id: string, wallNow: number): Promise<RedriveProgress> {
  if (!plan.deadLetterStream) throw new QueueError('SLUICE_ERR_QUEUE_NO_DEAD_LETTER', `${plan.id} has no spec.deadLetter.stream: there is nothing to redrive`);
  const { started, progress } = await startRedrive(client, plan, req, id, wallNow);
  if (!started) throw Object.assign(new QueueError('SLUICE_ERR_QUEUE_REDRIVE_RUNNING', `a redrive of ${plan.id} is already running (${progress.moved} moved so far)`), { progress });
  return progress;
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
          this.keys.stream, this.keys.deadLetter as string, this.keys.redrive, this.keys.seq, this.keys.orderActive, this.keys.orderWaiting,
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
