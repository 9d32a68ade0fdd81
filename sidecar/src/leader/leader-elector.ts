import type { Clock } from '../../../lib/clock.ts';
import type { Logger } from '../../../lib/log.ts';
import type { FencingToken } from './fencing-token.ts';
import type { LockLease, RedLock } from './redlock.ts';
import { electionResource } from '../../../lib/redis/key-layout.ts';
import { stepDownAt } from './validity.ts';

/** What the app reads at GET /v1/leadership/{name} and on the watch stream. */
export interface LeadershipStatus {
  readonly election: string;
  readonly name: string;
  readonly namespace: string;
  /** Whether this pod leads now. False as soon as validity is in doubt, before it actually ends. */
  readonly leader: boolean;
  /** The current leader's holder id as last seen (this sidecar's own id when it leads). */
  readonly holder: string | undefined;
  /** This pod's token while it leads; otherwise the highest token seen (the current leader's). */
  readonly fencingToken: FencingToken | undefined;
  /** Wall-clock time until which this pod may act as leader without hearing more (leaders only). */
  readonly validUntil: string | undefined;
  /** Wall-clock time this pod became leader (leaders only). */
  readonly since: string | undefined;
  /** Wall-clock time of this status: on the watch stream, when the change happened. */
  readonly at: string;
}

export interface ElectionTiming {
  readonly ttlMs: number;
  readonly renewEveryMs: number;
}

type State =
  | { readonly kind: 'follower'; holder: string | undefined; token: FencingToken | undefined }
  | { readonly kind: 'leader'; readonly lease: LockLease; readonly since: number }
  | { readonly kind: 'stopped' };

/**
 * One LeaderElection for this sidecar: a state machine over the RedLock engine.
 *
 * follower → leader when an acquire wins a majority (and the fencing token reached a majority);
 * leader renews every `renewEvery` by compare-and-extend. If renewals fail, it stays leader only
 * until `stepDownAt` — a margin before validity ends, timed on the monotonic clock — and then steps
 * down and tells the app. A renewal that learns the lock is surely gone steps down at once.
 * `status()` checks validity itself, so a process that was paused past its validity reports
 * not-leader on its first look, before any timer had a chance to fire.
 * Followers retry with jitter, at the remaining ttl they saw, or at once on a release message.
 */
export class LeaderElector {
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  private timing: ElectionTiming;
  private state: State = { kind: 'follower', holder: undefined, token: undefined };
  private readonly lock: RedLock;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly holderId: string;
  private readonly listeners = new Set<(s: LeadershipStatus) => void>();
  private timer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private busy = false;
  private last: LeadershipStatus | undefined;

  constructor(opts: { id: string; name: string; namespace: string; timing: ElectionTiming; lock: RedLock; clock: Clock; logger: Logger; holderId: string }) {
    if (!(opts.timing.renewEveryMs > 0 && opts.timing.renewEveryMs < opts.timing.ttlMs)) {
      throw new RangeError(`election ${opts.id}: renewEvery must be > 0 and shorter than ttl`);
    }
    this.id = opts.id;
    this.name = opts.name;
    this.namespace = opts.namespace;
    this.timing = opts.timing;
    this.lock = opts.lock;
    this.clock = opts.clock;
    this.logger = opts.logger.child({ election: opts.id });
    this.holderId = opts.holderId;
  }

  /** The lock resource on the nodes: one per LeaderElection, named after it. */
  get resource(): string {
    return electionResource(this.namespace, this.name);
  }

  start(): void {
    this.schedule(0);
  }

  /** New ttl/renewEvery from a new plan: used from the next round on, leadership is kept. */
  retime(timing: ElectionTiming): void {
    this.timing = timing;
  }

  onChange(listener: (s: LeadershipStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A release of this election's lock was announced: try now (with a little jitter). */
  released(): void {
    if (this.state.kind === 'follower' && !this.busy) this.schedule(Math.random() * 20);
  }

  isLeader(): boolean {
    this.checkValidity();
    return this.state.kind === 'leader';
  }

  status(): LeadershipStatus {
    this.checkValidity();
    const s = this.state;
    const base = { election: this.id, name: this.name, namespace: this.namespace, at: new Date(this.clock.wallNow()).toISOString() };
    if (s.kind === 'leader') {
      const wall = this.clock.wallNow() + (stepDownAt(s.lease.validUntil, s.lease.ttlMs) - this.clock.now());
      return { ...base, leader: true, holder: this.holderId, fencingToken: s.lease.token, validUntil: new Date(wall).toISOString(), since: new Date(s.since).toISOString() };
    }
    if (s.kind === 'follower') return { ...base, leader: false, holder: s.holder, fencingToken: s.token, validUntil: undefined, since: undefined };
    return { ...base, leader: false, holder: undefined, fencingToken: undefined, validUntil: undefined, since: undefined };
  }

  /** Stops electing; a leader releases its lock so a standby takes over at once (SIGTERM). */
  async stop(): Promise<void> {
    const s = this.state;
    this.state = { kind: 'stopped' };
    this.clearTimers();
    if (s.kind === 'leader') {
      this.emit();
      await this.lock.release(s.lease);
      this.logger.info('released leadership', { token: s.lease.token });
    }
  }

  private schedule(ms: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.round(), ms);
    this.timer.unref();
  }

  private async round(): Promise<void> {
    this.timer = undefined;
    if (this.state.kind === 'stopped') return;
    // A step-down may schedule a campaign while a renewal is still out; run it once that is done.
    if (this.busy) return this.schedule(20);
    this.busy = true;
    try {
      if (this.state.kind === 'leader') await this.renew(this.state.lease);
      else await this.campaign();
    } catch (err) {
      this.logger.error('election round failed', { error: err });
      if ((this.state as State).kind !== 'stopped') this.schedule(this.timing.renewEveryMs);
    } finally {
      this.busy = false;
    }
  }

  private async campaign(): Promise<void> {
    const r = await this.lock.acquire(this.resource, this.timing.ttlMs, this.holderId);
    if (this.state.kind === 'stopped') {
      if (r.acquired) await this.lock.release(r.lease);
      return;
    }
    if (r.acquired) {
      this.state = { kind: 'leader', lease: r.lease, since: this.clock.wallNow() };
      this.logger.info('became leader', { token: r.lease.token });
      this.armDeadline(r.lease);
      this.schedule(this.timing.renewEveryMs);
      this.emit();
      return;
    }
    const changed = this.state.kind !== 'follower' || this.state.holder !== r.holder || this.state.token !== r.token;
    this.state = { kind: 'follower', holder: r.holder, token: r.token };
    if (changed) this.emit();
    // Try again when the holder's lock would run out (if it is not renewed), never later than a
    // renew interval, spread by jitter so standbys don't stampede the nodes together.
    const base = Math.min(this.timing.renewEveryMs, r.retryInMs ?? this.timing.renewEveryMs);
    this.schedule(base + Math.random() * Math.min(100, this.timing.renewEveryMs / 10));
  }

  private async renew(lease: LockLease): Promise<void> {
    const r = await this.lock.extend(lease, this.timing.ttlMs);
    if (this.state.kind !== 'leader' || this.state.lease !== lease) return;
    if (r.extended) {
      this.armDeadline(lease);
      this.schedule(this.timing.renewEveryMs);
      this.emit();
      return;
    }
    if (r.lostForSure) {
      this.stepDown('lock taken or expired on a majority of nodes');
      return;
    }
    // Nodes did not answer: keep trying, faster, until the deadline steps down.
    this.logger.warn('renewal failed: retrying until validity runs out');
    this.schedule(Math.min(this.timing.renewEveryMs, 250));
  }

  private armDeadline(lease: LockLease): void {
    if (this.deadline !== undefined) clearTimeout(this.deadline);
    // Timers may fire a fraction of a millisecond before the monotonic clock reaches the deadline:
    // round up, and re-arm if it came early, or the step-down would never happen.
    const ms = Math.ceil(stepDownAt(lease.validUntil, lease.ttlMs) - this.clock.now()) + 1;
    this.deadline = setTimeout(() => {
      this.checkValidity();
      const s = this.state;
      if (s.kind === 'leader' && s.lease === lease) this.armDeadline(lease);
    }, Math.max(0, ms));
    this.deadline.unref();
  }

  private checkValidity(): void {
    const s = this.state;
    if (s.kind === 'leader' && this.clock.now() >= stepDownAt(s.lease.validUntil, s.lease.ttlMs)) {
      this.stepDown('validity running out without a successful renewal');
    }
  }

  private stepDown(reason: string): void {
    const s = this.state;
    if (s.kind !== 'leader') return;
    this.logger.warn('stepped down', { reason, token: s.lease.token });
    this.state = { kind: 'follower', holder: undefined, token: s.lease.token };
    this.clearTimers();
    this.emit();
    // Whatever is left of our lock on some nodes goes, so that a standby need not wait it out.
    void this.lock.release(s.lease).catch(() => {});
    this.schedule(Math.random() * Math.min(100, this.timing.renewEveryMs / 10));
  }

  private clearTimers(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.deadline !== undefined) clearTimeout(this.deadline);
    this.timer = undefined;
    this.deadline = undefined;
  }

  private emit(): void {
    const s = this.status();
    const prev = this.last;
    this.last = s;
    if (prev && prev.leader === s.leader && prev.since === s.since && prev.holder === s.holder && prev.fencingToken === s.fencingToken && prev.validUntil === s.validUntil) return;
    for (const l of this.listeners) l(s);
  }
}
