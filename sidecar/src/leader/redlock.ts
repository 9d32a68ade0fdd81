import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Clock } from '../../../lib/clock.ts';
import { decideFencingToken, nextFencingToken, type FencingToken } from './fencing-token.ts';
import { ACQUIRE, EXTEND, FENCE, RAISE, RELEASE, fenceKey, lockKey, releaseChannel } from './lock-scripts.ts';
import { quorum, tally, validUntil } from './validity.ts';
import type { LuaScript } from '../redis/lua-script.ts';
import { isNoScript } from '../redis/lua-script.ts';
import { batchWritesThisTurn } from '../redis/write-batching.ts';

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

/** One node's reply to ACQUIRE: won {1, counter before} or lost {0, value, pttl, counter}. */
type AcquireReply = [1, number] | [0, string, number, number];

/** Per node: the reply, `null` when the node failed (error, timeout), `undefined` while pending. */
type Answers<T> = (T | null | undefined)[];

/** How many resources' last seen fencing counters are remembered for proposals (oldest dropped). */
const KNOWN_TOKENS_MAX = 10_000;

/**
 * RedLock over independent Redis nodes, with fencing tokens (fencing-token.ts). Every round goes to
 * all nodes at once and is over as soon as its outcome is decided — a majority won, or too many
 * refused — so the slowest node of a majority never holds up the caller; each node's client has its
 * own command timeout, so a dead node costs at most that and never blocks the healthy ones.
 *
 * An acquisition is one round (SET NX PX with the proposed token) unless the proposal was too low,
 * then two; extend and release are one round each.
 */
export class RedLock {
  private readonly nodes: readonly Redis[];
  private readonly clock: Clock;
  readonly quorum: number;
  /** Highest fencing counter seen per resource: the next proposal is one more. */
  private readonly knownTokens = new Map<string, number>();
  /** Lock values are `holder#<this process's random prefix><sequence>`: unique without a syscall each. */
  private readonly noncePrefix = randomBytes(6).toString('hex');
  private sequence = 0;

  constructor(nodes: readonly Redis[], clock: Clock) {
    this.nodes = nodes;
    this.clock = clock;
    this.quorum = quorum(nodes.length);
  }

  async acquire(resource: string, ttlMs: number, holder: string): Promise<AcquireResult> {
    if (!(ttlMs >= 1)) throw new RangeError('ttl must be at least 1 ms');
    const value = `${holder}#${this.noncePrefix}${(++this.sequence).toString(36)}`;
    const proposed = nextFencingToken([this.knownTokens.get(resource) ?? 0]);
    const keysAndArgs = [lockKey(resource), fenceKey(resource), value, String(ttlMs), String(proposed)];
    const startedAt = this.clock.now();
    const q = this.quorum;
    // Decided once a majority took the proposal (won with a lower counter); otherwise all answers are needed.
    const answers = await this.round<AcquireReply>(ACQUIRE, keysAndArgs, (as) => {
      let fresh = 0;
      for (const a of as) if (a != null && a[0] === 1 && a[1] < proposed) fresh++;
      return fresh >= q;
    });

    const won: Redis[] = [];
    const wonCounters: number[] = [];
    let highest = 0;
    for (let i = 0; i < answers.length; i++) {
      const a = answers[i];
      if (a == null) continue;
      if (a[0] === 1) {
        won.push(this.nodes[i] as Redis);
        wonCounters.push(a[1]);
        if (a[1] > highest) highest = a[1];
      } else if (a[3] > highest) highest = a[3];
    }

    if (won.length >= q) {
      let token: FencingToken | undefined;
      const decided = decideFencingToken(proposed, wonCounters, q);
      if (!decided.writeBack) token = decided.token;
      else {
        // The proposal was too low on too many nodes: a second round with one above all of them.
        const results = await Promise.all(won.map((n) => this.evalOn(n, FENCE, [lockKey(resource), fenceKey(resource), value, String(decided.token)]).then((r) => r === 1, () => false)));
        if (results.filter(Boolean).length >= q) token = decided.token;
      }
      const until = validUntil(startedAt, ttlMs);
      if (token !== undefined && this.clock.now() < until) {
        this.remember(resource, token);
        return { acquired: true, lease: { resource, value, holder, token, ttlMs, validUntil: until } };
      }
    }
    // Nodes won (and given back below) may have taken the proposal: propose above it next time.
    this.remember(resource, won.length > 0 ? Math.max(highest, proposed) : highest);
    // Lost (or too slow): give back what was won so the others need not wait for the ttl.
    if (won.length > 0) await this.releaseOn(won, resource, value);
    return { acquired: false, ...whoHolds(answers), token: highest };
  }

  /** Compare-and-extend on every node; on success the lease's validity is renewed from the round's start. */
  async extend(lease: LockLease, ttlMs = lease.ttlMs): Promise<ExtendResult> {
    const startedAt = this.clock.now();
    const n = this.nodes.length;
    const q = this.quorum;
    const answers = await this.round<number>(EXTEND, [lockKey(lease.resource), lease.value, String(ttlMs)], (as) => {
      let accepted = 0;
      let refused = 0;
      for (const a of as) {
        if (a === 1) accepted++;
        else if (a === 0) refused++;
      }
      return accepted >= q || refused > n - q;
    });
    const t = tally(answers.map((a) => (a == null ? undefined : a === 1)));
    const until = validUntil(startedAt, ttlMs);
    if (t.won && this.clock.now() < until) {
      lease.ttlMs = ttlMs;
      lease.validUntil = until;
      return { extended: true };
    }
    return { extended: false, lostForSure: t.lostForSure };
  }

  /**
   * Compare-and-delete on every node (best effort: a node that does not answer lets it expire).
   * Returns once a majority answered; the rest are on the wire already.
   */
  async release(lease: LockLease): Promise<boolean> {
    lease.validUntil = -Infinity;
    const answers = await this.releaseOn(this.nodes, lease.resource, lease.value);
    return answers.some((a) => a === 1);
  }

  /**
   * Makes `from`'s fencing counter the floor of `to`'s on every node that answers (a key-layout
   * migration renamed the resource): each node reads the old counter and raises the new one to it,
   * two single-key steps. The next proposal for `to` is above every counter seen, so tokens keep
   * increasing across the rename whichever majority the next acquisition wins.
   */
  async raiseCounterFrom(from: string, to: string): Promise<void> {
    const seen = await Promise.all(this.nodes.map(async (n) => {
      const old = Number((await n.get(fenceKey(from)).catch(() => null)) ?? 0);
      if (old > 0) await this.evalOn(n, RAISE, [fenceKey(to), String(old)]).catch(() => {});
      return old;
    }));
    const highest = Math.max(0, ...seen);
    if (highest > 0) this.remember(to, highest);
  }

  private releaseOn(nodes: readonly Redis[], resource: string, value: string): Promise<Answers<number>> {
    const q = quorum(nodes.length);
    return this.round<number>(RELEASE, [lockKey(resource), value, releaseChannel(resource)], (as) => {
      let answered = 0;
      for (const a of as) if (a !== undefined) answered++;
      return answered >= q;
    }, nodes);
  }

  /**
   * Runs `script` on every node at once; resolves with a snapshot of the answers as soon as
   * `decided` says so, or when every node has answered or failed.
   */
  private round<T>(script: LuaScript, keysAndArgs: readonly string[], decided: (answers: Answers<T>) => boolean, nodes: readonly Redis[] = this.nodes): Promise<Answers<T>> {
    return new Promise((resolve) => {
      const answers: Answers<T> = new Array<T | null | undefined>(nodes.length).fill(undefined);
      let arrived = 0;
      let done = false;
      const settle = (i: number, a: T | null) => {
        answers[i] = a;
        arrived++;
        if (!done && (arrived === nodes.length || decided(answers))) {
          done = true;
          resolve(answers.slice());
        }
      };
      nodes.forEach((n, i) => {
        this.evalOn(n, script, keysAndArgs).then((r) => settle(i, r as T), () => settle(i, null));
      });
    });
  }

  /** EVALSHA, and EVAL when the node has not got the script (restarted since it was loaded). */
  private evalOn(node: Redis, script: LuaScript, keysAndArgs: readonly string[]): Promise<unknown> {
    batchWritesThisTurn(node);
    return script.evalsha(node, keysAndArgs).catch((err: unknown) => {
      if (isNoScript(err)) return script.eval(node, keysAndArgs);
      throw err;
    });
  }

  private remember(resource: string, token: number): void {
    const known = this.knownTokens.get(resource);
    if (known !== undefined && known >= token) return;
    // Forgetting costs at most a second round on the next acquisition of a forgotten resource.
    if (known === undefined && this.knownTokens.size >= KNOWN_TOKENS_MAX) this.knownTokens.clear();
    this.knownTokens.set(resource, token);
  }
}

/** From the refusing nodes: who holds it (the holder most of them name) and the longest ttl left. */
function whoHolds(answers: Answers<AcquireReply>): { holder: string | undefined; retryInMs: number | undefined } {
  const holders = new Map<string, number>();
  let retryInMs: number | undefined;
  for (const a of answers) {
    if (a == null || a[0] === 1) continue;
    const h = holderOf(a[1]);
    if (h !== '') holders.set(h, (holders.get(h) ?? 0) + 1);
    if (a[2] > 0) retryInMs = Math.max(retryInMs ?? 0, a[2]);
  }
  let holder: string | undefined;
  let most = 0;
  for (const [h, c] of holders) if (c > most) [holder, most] = [h, c];
  return { holder, retryInMs };
}

/** `holder#nonce` → `holder`. */
export function holderOf(value: string): string {
  const i = value.lastIndexOf('#');
  return i < 0 ? value : value.slice(0, i);
}
