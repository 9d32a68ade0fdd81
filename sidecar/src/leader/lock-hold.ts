import type { Clock } from '../../../lib/clock.ts';
import type { AppLocks, AppLockView } from './app-locks.ts';
import { LockError } from './errors.ts';
import { stepDownAt, validUntil } from './validity.ts';

/** What a hold reports on its stream, one event per line. */
export type HoldEvent =
  | ({ readonly event: 'acquired'; readonly heartbeatMs: number; readonly maxHoldUntil: string } & AppLockView)
  | { readonly event: 'renewed'; readonly lockId: string; readonly fencingToken: number; readonly validUntil: string }
  /** The lock can no longer be trusted: sent before its validity ends. Nothing after it. */
  | { readonly event: 'lost'; readonly reason: 'taken' | 'renewal-failed'; readonly message: string }
  /** The sidecar let go of the lock (and released it on the nodes). Nothing after it. */
  | { readonly event: 'released'; readonly reason: HoldEnd };

export type HoldEnd = 'done' | 'client-gone' | 'heartbeat-missed' | 'max-hold' | 'shutdown';

export interface HoldOptions {
  ttlMs: number;
  waitMs: number;
  /** The app must send something on the call at least this often, or the lock is released. */
  heartbeatMs: number;
  /** The hold ends (and the lock is released) this long after it was taken, whatever happens. */
  maxHoldMs: number;
}

export const HOLD_LIMITS = {
  heartbeatMs: { min: 50, max: 60_000, default: 5_000 },
  maxHoldMs: { min: 100, max: 3_600_000, default: 600_000 },
} as const;

/**
 * A lock held for as long as the app that asked for it lives: the sidecar renews it (every third
 * of the ttl) while the app keeps heartbeating on the call, and lets go at once when the app stops
 * heartbeating, goes away, ends the call, or reaches the maximum hold time. When renewals keep
 * failing it says "lost" a margin before the validity ends (the same margin leaders step down by),
 * so an app that reads its stream never acts on a lock it might no longer hold.
 */
export class LockHold {
  private readonly locks: AppLocks;
  private readonly resource: string;
  private readonly opts: HoldOptions;
  private readonly clock: Clock;
  private readonly emit: (e: HoldEvent) => void;
  private view: AppLockView | undefined;
  /** Monotonic end of validity as of the last successful acquire or renewal. */
  private validUntilMs = 0;
  private ended = false;
  private endReason: HoldEnd = 'done';
  private readonly timers = { renew: undefined as NodeJS.Timeout | undefined, stepDown: undefined as NodeJS.Timeout | undefined, heartbeat: undefined as NodeJS.Timeout | undefined, maxHold: undefined as NodeJS.Timeout | undefined };
  private readonly finished: Promise<void>;
  private finish!: () => void;

  constructor(opts: { locks: AppLocks; resource: string; hold: HoldOptions; clock: Clock; emit: (e: HoldEvent) => void }) {
    this.locks = opts.locks;
    this.resource = opts.resource;
    this.opts = opts.hold;
    this.clock = opts.clock;
    this.emit = opts.emit;
    this.finished = new Promise((resolve) => (this.finish = resolve));
    checkRange('heartbeat', opts.hold.heartbeatMs, HOLD_LIMITS.heartbeatMs);
    checkRange('maxHold', opts.hold.maxHoldMs, HOLD_LIMITS.maxHoldMs);
  }

  /** Resolves once every event has been emitted and the lock is released (or lost). */
  get done(): Promise<void> {
    return this.finished;
  }

  /** Takes the lock (throws LockError as a plain take does) and starts renewing it. */
  async start(): Promise<void> {
    const view = await this.locks.acquire(this.resource, this.opts.ttlMs, this.opts.waitMs);
    this.view = view;
    // The view's validity is on the wall clock; carry it onto the monotonic one.
    this.validUntilMs = this.clock.now() + (Date.parse(view.validUntil) - this.clock.wallNow());
    if (this.ended) {
      // The app ended the call (or went away) while we waited for the lock: give it back at once.
      await this.locks.release(this.resource, view.lockId).catch(() => {});
      this.emit({ event: 'released', reason: this.endReason });
      return;
    }
    const maxHoldUntil = new Date(this.clock.wallNow() + this.opts.maxHoldMs).toISOString();
    this.emit({ event: 'acquired', ...view, heartbeatMs: this.opts.heartbeatMs, maxHoldUntil });
    this.timers.maxHold = setTimeout(() => void this.end('max-hold'), this.opts.maxHoldMs);
    this.heartbeat();
    this.armStepDown();
    this.scheduleRenewal(this.renewEveryMs());
  }

  /** The app proved it is alive. */
  heartbeat(): void {
    if (this.ended || this.view === undefined) return;
    clearTimeout(this.timers.heartbeat);
    this.timers.heartbeat = setTimeout(() => void this.end('heartbeat-missed'), this.opts.heartbeatMs);
  }

  /** Releases the lock and reports why; idempotent. */
  async end(reason: HoldEnd): Promise<void> {
    if (this.ended) return this.finished;
    this.ended = true;
    this.endReason = reason;
    this.clearTimers();
    const view = this.view;
    if (view === undefined) {
      this.finish(); // still waiting in start(): it releases when the acquisition returns
      return;
    }
    try {
      await this.locks.release(this.resource, view.lockId);
    } catch (err) {
      if (!(err instanceof LockError)) throw err;
      // Already expired or taken: nothing to release, the app is told it was released all the same.
    }
    this.emit({ event: 'released', reason });
    this.finish();
  }

  private renewEveryMs(): number {
    return Math.max(10, Math.floor(this.opts.ttlMs / 3));
  }

  private scheduleRenewal(ms: number): void {
    clearTimeout(this.timers.renew);
    this.timers.renew = setTimeout(() => void this.renew(), ms);
  }

  private async renew(): Promise<void> {
    if (this.ended || this.view === undefined) return;
    const startedAt = this.clock.now();
    try {
      const v = await this.locks.extend(this.resource, this.view.lockId, this.opts.ttlMs);
      if (this.ended) return;
      this.view = v;
      this.validUntilMs = validUntil(startedAt, this.opts.ttlMs);
      this.armStepDown();
      this.emit({ event: 'renewed', lockId: v.lockId, fencingToken: v.fencingToken, validUntil: v.validUntil });
      this.scheduleRenewal(this.renewEveryMs());
    } catch (err) {
      if (!(err instanceof LockError)) throw err;
      if (this.ended) return;
      // Anything but "no majority answered" (lostForSure: false) means the lock is gone: taken, or
      // expired and forgotten by AppLocks.
      if (err.details.lostForSure !== false) {
        return this.lose('taken', `lock ${this.resource} is no longer held: ${err.message}`);
      }
      // No majority answered: try again soon; the step-down timer ends it if that keeps failing.
      this.scheduleRenewal(Math.min(this.renewEveryMs(), 100));
    }
  }

  private armStepDown(): void {
    clearTimeout(this.timers.stepDown);
    const ms = Math.max(0, stepDownAt(this.validUntilMs, this.opts.ttlMs) - this.clock.now());
    this.timers.stepDown = setTimeout(() => this.lose('renewal-failed', `lock ${this.resource} could not be renewed before its validity ended`), ms);
  }

  private lose(reason: 'taken' | 'renewal-failed', message: string): void {
    if (this.ended) return;
    this.ended = true;
    this.clearTimers();
    this.emit({ event: 'lost', reason, message });
    const view = this.view;
    // Best effort, in case it is still ours on some nodes: nobody renews it any more.
    if (view) void this.locks.release(this.resource, view.lockId).catch(() => {});
    this.finish();
  }

  private clearTimers(): void {
    for (const t of Object.values(this.timers)) clearTimeout(t);
  }
}

function checkRange(what: string, ms: number, r: { min: number; max: number }): void {
  if (!Number.isFinite(ms) || ms < r.min || ms > r.max) throw new LockError('SLUICE_ERR_LOCK_BAD_REQUEST', `${what} must be between ${r.min} ms and ${r.max} ms`);
}
