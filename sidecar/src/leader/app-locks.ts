import type { Clock } from '../../../lib/clock.ts';
import { appLockResource, legacyAppLockResource } from '../../../lib/redis/key-layout.ts';
import { LockError } from './errors.ts';
import type { LockLease, RedLock } from './redlock.ts';
import type { ReleaseNotifier } from './release-notifier.ts';

/** What the app gets back for a held lock. */
export interface AppLockView {
  readonly resource: string;
  /** Pass it back to extend or release; it is the value stored on the lock nodes. */
  readonly lockId: string;
  readonly fencingToken: number;
  readonly ttlMs: number;
  /** Wall-clock end of validity: after it the app must assume it no longer holds the lock. */
  readonly validUntil: string;
}

/**
 * Fine-grained locks for the app (`/v1/locks/{resource}`), on the same RedLock engine as leader
 * elections. The sidecar remembers the locks it handed out so that it can release them when the
 * pod stops, and so that extend/release are refused for ids it never issued. A resource name is
 * the app's, inside its pod's namespace: two namespaces locking "orders" hold two different locks.
 */
export class AppLocks {
  private readonly lock: RedLock;
  private readonly notifier: ReleaseNotifier;
  private readonly clock: Clock;
  private readonly holderId: string;
  private readonly namespace: string;
  private readonly held = new Map<string, LockLease>();
  /** Resources whose version-1 fencing counter has been carried over in this process. */
  private readonly carried = new Set<string>();
  static readonly MAX_TTL_MS = 3_600_000;
  /** Locks one app may hold through its sidecar at once: the record of each is sidecar memory. */
  static readonly MAX_HELD = 10_000;
  private nextSweepAt = 0;
  static readonly MAX_WAIT_MS = 60_000;

  constructor(opts: { lock: RedLock; notifier: ReleaseNotifier; clock: Clock; holderId: string; namespace: string }) {
    this.lock = opts.lock;
    this.namespace = opts.namespace;
    this.notifier = opts.notifier;
    this.clock = opts.clock;
    this.holderId = opts.holderId;
  }

  get count(): number {
    this.sweepExpired();
    return this.held.size;
  }

  /** Tries until `waitMs` has passed (0: once); throws SLUICE_ERR_LOCK_NOT_ACQUIRED. */
  async acquire(resource: string, ttlMs: number, waitMs = 0): Promise<AppLockView> {
    checkResource(resource);
    checkMs('ttl', ttlMs, 1, AppLocks.MAX_TTL_MS);
    checkMs('wait', waitMs, 0, AppLocks.MAX_WAIT_MS);
    this.sweepExpired();
    if (this.held.size >= AppLocks.MAX_HELD) {
      throw new LockError('SLUICE_ERR_LOCK_TOO_MANY', `this pod already holds ${AppLocks.MAX_HELD} locks; release some first`);
    }
    const deadline = this.clock.now() + waitMs;
    await this.carryLegacyCounter(resource);
    for (;;) {
      const r = await this.lock.acquire(this.resourceOf(resource), ttlMs, this.holderId);
      if (r.acquired) {
        this.held.set(r.lease.value, r.lease);
        return this.view(r.lease, resource);
      }
      const left = deadline - this.clock.now();
      if (left <= 0) {
        throw new LockError('SLUICE_ERR_LOCK_NOT_ACQUIRED', `lock ${resource} is held by another holder`, {
          holder: r.holder, retryAfterMs: r.retryInMs,
        });
      }
      // Wake on a release message, else poll: at most 200 ms, sooner if the holder's ttl ends sooner.
      await this.waitForRelease(resource, Math.min(left, r.retryInMs ?? 50, 200) * (0.8 + Math.random() * 0.4));
    }
  }

  async extend(resource: string, lockId: string, ttlMs?: number): Promise<AppLockView> {
    const lease = this.lease(resource, lockId);
    if (ttlMs !== undefined) checkMs('ttl', ttlMs, 1, AppLocks.MAX_TTL_MS);
    const r = await this.lock.extend(lease, ttlMs ?? lease.ttlMs);
    if (!r.extended) {
      if (r.lostForSure || this.clock.now() >= lease.validUntil) this.held.delete(lockId);
      throw new LockError('SLUICE_ERR_LOCK_NOT_HELD', `lock ${resource} could not be extended: ${r.lostForSure ? 'it is no longer held' : 'no majority of lock nodes answered'}`, { lostForSure: r.lostForSure });
    }
    return this.view(lease, resource);
  }

  async release(resource: string, lockId: string): Promise<void> {
    const lease = this.lease(resource, lockId);
    this.held.delete(lockId);
    const stillValid = this.clock.now() < lease.validUntil;
    await this.lock.release(lease);
    if (!stillValid) throw new LockError('SLUICE_ERR_LOCK_NOT_HELD', `lock ${resource} had already expired`);
  }

  /**
   * Forgets locks whose validity has ended and that the app never released or extended: they are
   * gone from the nodes already, and only the record would stay. At most once a second, so a burst
   * of acquisitions does not walk the map each time.
   */
  sweepExpired(): void {
    const now = this.clock.now();
    if (now < this.nextSweepAt) return;
    this.nextSweepAt = now + 1_000;
    for (const [id, lease] of this.held) if (now >= lease.validUntil) this.held.delete(id);
  }

  /** Releases every lock still held (pod shutdown). */
  async close(): Promise<void> {
    const leases = [...this.held.values()];
    this.held.clear();
    await Promise.all(leases.map((l) => this.lock.release(l)));
  }

  private lease(resource: string, lockId: string): LockLease {
    if (typeof lockId !== 'string' || lockId === '') throw new LockError('SLUICE_ERR_LOCK_BAD_REQUEST', 'lockId is required');
    const lease = this.held.get(lockId);
    if (lease === undefined || lease.resource !== this.resourceOf(resource)) {
      throw new LockError('SLUICE_ERR_LOCK_NOT_HELD', `lock ${resource} is not held under this lockId`);
    }
    return lease;
  }

  /**
   * Before the first acquisition of a resource in this process: the lock's fencing counter of
   * layout version 1 (`app/<resource>`, shared by every namespace) becomes the floor of the new
   * one, so tokens keep increasing across the upgrade. Idempotent, and cheap after the first time.
   */
  private async carryLegacyCounter(resource: string): Promise<void> {
    if (this.carried.has(resource)) return;
    await this.lock.raiseCounterFrom(legacyAppLockResource(resource), this.resourceOf(resource));
    if (this.carried.size >= 10_000) this.carried.clear();
    this.carried.add(resource);
  }

  private resourceOf(resource: string): string {
    return appLockResource(this.namespace, resource);
  }

  private view(lease: LockLease, resource: string): AppLockView {
    return {
      resource,
      lockId: lease.value,
      fencingToken: lease.token,
      ttlMs: lease.ttlMs,
      validUntil: new Date(this.clock.wallNow() + (lease.validUntil - this.clock.now())).toISOString(),
    };
  }

  private waitForRelease(resource: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        off();
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, ms));
      const off = this.notifier.onRelease(this.resourceOf(resource), done);
    });
  }
}

function checkResource(resource: string): void {
  if (typeof resource !== 'string' || resource.length === 0 || resource.length > 256) {
    throw new LockError('SLUICE_ERR_LOCK_BAD_REQUEST', 'resource must be 1 to 256 characters');
  }
}

function checkMs(what: string, ms: number, min: number, max: number): void {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < min || ms > max) {
    throw new LockError('SLUICE_ERR_LOCK_BAD_REQUEST', `${what} must be between ${min} ms and ${max} ms`);
  }
}
