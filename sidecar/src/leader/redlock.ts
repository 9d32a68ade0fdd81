import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Clock } from '../../../lib/clock.ts';
import { nextFencingToken, type FencingToken } from './fencing-token.ts';
import { ACQUIRE, EXTEND, FENCE, RELEASE, fenceKey, lockKey, releaseChannel } from './lock-scripts.ts';
import { quorum, tally, validUntil } from './validity.ts';

/** A lock held on a majority of the nodes. `validUntil` is on the injected monotonic clock. */
export interface LockLease {
  readonly resource: string;
  /** The unique value stored on the nodes: `holder#nonce`. The app's `lockId`. */
  readonly value: string;
  readonly holder: string;
  readonly token: FencingToken;
  ttlMs: number;
  validUntil: number;
}

export type AcquireResult =
  | { readonly acquired: true; readonly lease: LockLease }
  | {
      readonly acquired: false;
      /** Who holds it, as most refusing nodes reported (undefined when nodes did not answer). */
      readonly holder: string | undefined;
      /** The highest fencing counter seen: the current holder's token when it holds a majority. */
      readonly token: FencingToken;
      /** When it may be worth trying again: the longest remaining ttl seen on a refusing node. */
      readonly retryInMs: number | undefined;
    };

export type ExtendResult = { readonly extended: true } | { readonly extended: false; readonly lostForSure: boolean };

/**
 * RedLock over independent Redis nodes, with fencing tokens (fencing-token.ts). Every call goes to
 * all nodes at once; each node's client has its own command timeout, so one slow or dead node
 * costs at most that timeout and never blocks a majority of healthy ones.
 */
export class RedLock {
  private readonly nodes: readonly Redis[];
  private readonly clock: Clock;
  readonly quorum: number;

  constructor(nodes: readonly Redis[], clock: Clock) {
    this.nodes = nodes;
    this.clock = clock;
    this.quorum = quorum(nodes.length);
  }

  async acquire(resource: string, ttlMs: number, holder: string): Promise<AcquireResult> {
    if (!(ttlMs >= 1)) throw new RangeError('ttl must be at least 1 ms');
    const value = `${holder}#${randomBytes(8).toString('hex')}`;
    const keys = [lockKey(resource), fenceKey(resource)];
    const startedAt = this.clock.now();
    const answers = await Promise.all(this.nodes.map((n) => ACQUIRE.run(n, keys, [value, ttlMs]).then((r) => r as (number | string)[], () => undefined)));

    const won: Redis[] = [];
    const counters: number[] = [];
    const holders = new Map<string, number>();
    let retryInMs: number | undefined;
    answers.forEach((a, i) => {
      if (a === undefined) return;
      if (a[0] === 1) {
        won.push(this.nodes[i] as Redis);
        counters.push(Number(a[1]));
        return;
      }
      counters.push(Number(a[3] ?? 0));
      const h = holderOf(String(a[1]));
      if (h !== '') holders.set(h, (holders.get(h) ?? 0) + 1);
      const pttl = Number(a[2]);
      if (pttl > 0) retryInMs = Math.max(retryInMs ?? 0, pttl);
    });

    if (won.length >= this.quorum) {
      const token = nextFencingToken(counters);
      const fenced = await Promise.all(won.map((n) => FENCE.run(n, keys, [value, token]).then((r) => r === 1, () => undefined)));
      const until = validUntil(startedAt, ttlMs);
      if (fenced.filter((f) => f === true).length >= this.quorum && this.clock.now() < until) {
        return { acquired: true, lease: { resource, value, holder, token, ttlMs, validUntil: until } };
      }
    }
    // Lost (or too slow): give back what was won so the others need not wait for the ttl.
    if (won.length > 0) await this.releaseOn(won, resource, value);
    let top: string | undefined;
    let topCount = 0;
    for (const [h, c] of holders) if (c > topCount) [top, topCount] = [h, c];
    return { acquired: false, holder: top, token: Math.max(0, ...counters), retryInMs };
  }

  /** Compare-and-extend on every node; on success the lease's validity is renewed from the round's start. */
  async extend(lease: LockLease, ttlMs = lease.ttlMs): Promise<ExtendResult> {
    const key = [lockKey(lease.resource)];
    const startedAt = this.clock.now();
    const answers = await Promise.all(this.nodes.map((n) => EXTEND.run(n, key, [lease.value, ttlMs]).then((r) => r === 1, () => undefined)));
    const t = tally(answers);
    const until = validUntil(startedAt, ttlMs);
    if (t.won && this.clock.now() < until) {
      lease.ttlMs = ttlMs;
      lease.validUntil = until;
      return { extended: true };
    }
    return { extended: false, lostForSure: t.lostForSure };
  }

  /** Compare-and-delete on every node (best effort: a node that does not answer lets it expire). */
  async release(lease: LockLease): Promise<boolean> {
    const answers = await this.releaseOn(this.nodes, lease.resource, lease.value);
    lease.validUntil = -Infinity;
    return answers.some((a) => a);
  }

  private releaseOn(nodes: readonly Redis[], resource: string, value: string): Promise<boolean[]> {
    const key = [lockKey(resource)];
    const channel = releaseChannel(resource);
    return Promise.all(nodes.map((n) => RELEASE.run(n, key, [value, channel]).then((r) => r === 1, () => false)));
  }
}

/** `holder#nonce` → `holder`. */
export function holderOf(value: string): string {
  const i = value.lastIndexOf('#');
  return i < 0 ? value : value.slice(0, i);
}
