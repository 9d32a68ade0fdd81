/**
 * Leader election among operator replicas on a coordination.k8s.io/v1 Lease, with client-go's
 * semantics: a holder renews every `retryPeriod`; another replica takes over only after it has
 * seen the lease unchanged for `leaseDuration` by its OWN clock (never comparing clocks across
 * machines); every write is a PUT with the read resourceVersion, so two candidates cannot both
 * win (the loser gets 409). A leader that cannot renew within `renewDeadline` steps down before
 * anyone else could take over, so two replicas never act as leader at once. On a clean stop the
 * leader releases the lease so a successor starts at once instead of waiting it out.
 */
import { systemClock, type Clock } from '../../lib/clock.ts';
import type { Logger } from '../../lib/log.ts';
import { isConflict, isNotFound } from './errors.ts';
import { LEASES } from './kinds.ts';
import { resourcePath, type KubeClient, type KubeObject } from './kube-client.ts';

export interface LeaderLeaseOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  retryPeriodMs: number;
  /** A leader that has not renewed for this long steps down (must be < leaseDuration). */
  renewDeadlineMs: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  logger: Logger;
  clock?: Clock;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

/** Lease times are MicroTime: RFC 3339 with microseconds. */
const microTime = (ms: number) => new Date(ms).toISOString().replace(/Z$/, '000Z');

export class LeaderLease {
  private readonly opts: LeaderLeaseOptions;
  private readonly clock: Clock;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private leading = false;
  private lastRenew = 0;
  /** The lease record we last saw and when (our clock) we first saw it. */
  private observed: { record: string; at: number } | undefined;
  /** Who holds the lease, as last observed. */
  holder: string | undefined;

  constructor(opts: LeaderLeaseOptions) {
    if (!(opts.renewDeadlineMs < opts.leaseDurationMs)) throw new RangeError('renewDeadline must be shorter than leaseDuration');
    if (!(opts.retryPeriodMs < opts.renewDeadlineMs)) throw new RangeError('retryPeriod must be shorter than renewDeadline');
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.running = true;
    void this.tick();
  }

  async stop({ release = true }: { release?: boolean } = {}): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    if (this.leading) {
      if (release) await this.release().catch((err: Error) => this.opts.logger.warn('lease release failed', { err }));
      this.stepDown();
    }
  }

  private path(name?: string): string {
    return resourcePath(LEASES, this.opts.namespace, name);
  }

  private async tick(): Promise<void> {
    if (!this.running) return;
    try {
      const ok = await this.tryAcquireOrRenew();
      if (ok) {
        this.lastRenew = this.clock.now();
        if (!this.leading && this.running) {
          this.leading = true;
          this.opts.logger.info('became leader', { lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.opts.identity });
          this.opts.onStartedLeading();
        }
      }
    } catch (err) {
      this.opts.logger.warn('lease update failed', { err });
    }
    if (this.leading && this.clock.now() - this.lastRenew > this.opts.renewDeadlineMs) {
      this.opts.logger.warn('could not renew the lease in time; stepping down', { identity: this.opts.identity });
      this.stepDown();
    }
    if (this.running) {
      // Jitter the followers' polling so replicas do not all hit the API at the same instant.
      const delay = this.leading ? this.opts.retryPeriodMs : this.opts.retryPeriodMs * (1 + Math.random() * 0.2);
      this.timer = setTimeout(() => void this.tick(), delay);
      this.timer.unref?.();
    }
  }

  private stepDown(): void {
    if (!this.leading) return;
    this.leading = false;
    this.opts.onStoppedLeading();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { client, identity, leaseDurationMs } = this.opts;
    const nowMs = Date.now();
    const spec: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.max(1, Math.round(leaseDurationMs / 1000)),
      acquireTime: microTime(nowMs),
      renewTime: microTime(nowMs),
      leaseTransitions: 0,
    };
    let lease: KubeObject;
    try {
      lease = await client.get(this.path(this.opts.name));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await client.create(this.path(), {
        apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
        metadata: { name: this.opts.name, namespace: this.opts.namespace }, spec,
      });
      this.holder = identity;
      return true;
    }
    const current = (lease.spec ?? {}) as LeaseSpec;
    const record = JSON.stringify([current.holderIdentity, current.renewTime, current.leaseTransitions]);
    if (this.observed?.record !== record) this.observed = { record, at: this.clock.now() };
    this.holder = current.holderIdentity || undefined;
    const mine = current.holderIdentity === identity;
    if (!mine && current.holderIdentity) {
      const duration = (current.leaseDurationSeconds ?? 15) * 1000;
      if (this.clock.now() - this.observed.at < duration) return false;
    }
    const next: LeaseSpec = mine
      ? { ...current, renewTime: spec.renewTime, leaseDurationSeconds: spec.leaseDurationSeconds }
      : { ...spec, leaseTransitions: (current.leaseTransitions ?? 0) + 1 };
    // PUT with the resourceVersion we read: if someone else wrote meanwhile, we get 409 and lose.
    await client.replace(this.path(this.opts.name), { ...lease, spec: next });
    this.holder = identity;
    return true;
  }

  /**
   * Hands the lease back. A renewal still in flight when stop() was called can update the Lease
   * between our read and our write: that conflict is retried from a fresh read, or the successor
   * would wait out the whole lease.
   */
  private async release(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const lease = await this.opts.client.get(this.path(this.opts.name));
      if ((lease.spec as LeaseSpec | undefined)?.holderIdentity !== this.opts.identity) return;
      try {
        await this.opts.client.replace(this.path(this.opts.name), {
          ...lease,
          spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(Date.now()) },
        });
        return;
      } catch (err) {
        if (!isConflict(err) || attempt >= 5) throw err;
      }
    }
  }
}
