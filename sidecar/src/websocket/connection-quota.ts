import type { RateLimitRule } from '../../../lib/policy/plan.ts';

/**
 * `websocket.maxConnectionsPerKey`: how many connections one key (a client address, a header
 * value) may hold open at once. A quota answers an upgrade with a lease, released when the
 * connection ends, or with a refusal. Local quotas answer synchronously; Global ones (Redis) may
 * return a promise.
 */
export interface ConnectionLease {
  release(): void;
}

export type QuotaAnswer = { readonly lease: ConnectionLease } | { readonly refusedForMs: number };

export interface ConnectionQuota {
  acquire(key: string, max: number): QuotaAnswer | Promise<QuotaAnswer>;
  close(): void;
}

/**
 * What a refused client is told in Retry-After. A slot frees only when one of that key's own
 * connections closes — rarely within a second — so the hint is longer than the one second of
 * maxConnections, which frees as soon as anyone leaves.
 */
export const QUOTA_RETRY_AFTER_MS = 5_000;

/**
 * Per-sidecar counts. An entry exists only while its key holds a connection, so memory follows
 * the open connections (already bounded by the sockets a process can hold), never the keys a
 * client can invent.
 */
export class LocalConnectionQuota implements ConnectionQuota {
  private readonly open = new Map<string, number>();

  /** Open connections counted under `key`. */
  count(key: string): number {
    return this.open.get(key) ?? 0;
  }

  get keys(): number {
    return this.open.size;
  }

  acquire(key: string, max: number): QuotaAnswer {
    const n = this.open.get(key) ?? 0;
    if (n >= max) return { refusedForMs: QUOTA_RETRY_AFTER_MS };
    this.open.set(key, n + 1);
    return { lease: new LocalLease(this.open, key) };
  }

  close(): void {
    // Nothing to stop: leases still open release into the map they came from.
  }
}

class LocalLease implements ConnectionLease {
  private open: Map<string, number> | undefined;
  private readonly key: string;

  constructor(open: Map<string, number>, key: string) {
    this.open = open;
    this.key = key;
  }

  release(): void {
    const open = this.open;
    if (!open) return;
    this.open = undefined;
    const n = (open.get(this.key) ?? 1) - 1;
    if (n <= 0) open.delete(this.key);
    else open.set(this.key, n);
  }
}

/** One quota an upgrade must pass: the rule's quota, the key this request counts under, its max. */
export interface QuotaClaim {
  readonly rule: RateLimitRule;
  readonly quota: ConnectionQuota;
  readonly key: string;
  readonly max: number;
  /** DryRun rules count a refusal (would_limit) and admit. */
  readonly enforce: boolean;
}

export type ClaimOutcome =
  | { readonly leases: ConnectionLease[]; readonly wouldLimit: readonly RateLimitRule[] }
  | { readonly refused: RateLimitRule; readonly retryAfterMs: number };

/**
 * Takes a lease from every claim, in order; the first enforced refusal releases what was taken
 * and refuses the upgrade. Synchronous unless a quota answers with a promise (Global rules).
 */
export function claimAll(claims: readonly QuotaClaim[]): ClaimOutcome | Promise<ClaimOutcome> {
  const leases: ConnectionLease[] = [];
  const wouldLimit: RateLimitRule[] = [];
  for (let i = 0; i < claims.length; i++) {
    const c = claims[i] as QuotaClaim;
    const answer = c.quota.acquire(c.key, c.max);
    if (answer instanceof Promise) return claimRest(claims, i, answer, leases, wouldLimit);
    const refused = take(c, answer, leases, wouldLimit);
    if (refused) return refused;
  }
  return { leases, wouldLimit };
}

async function claimRest(
  claims: readonly QuotaClaim[], from: number, first: Promise<QuotaAnswer>, leases: ConnectionLease[], wouldLimit: RateLimitRule[],
): Promise<ClaimOutcome> {
  let pending: Promise<QuotaAnswer> | undefined = first;
  for (let i = from; i < claims.length; i++) {
    const c = claims[i] as QuotaClaim;
    let answer: QuotaAnswer;
    try {
      answer = await (pending ?? c.quota.acquire(c.key, c.max));
    } catch (err) {
      for (const l of leases) l.release();
      throw err;
    }
    pending = undefined;
    const refused = take(c, answer, leases, wouldLimit);
    if (refused) return refused;
  }
  return { leases, wouldLimit };
}

function take(c: QuotaClaim, answer: QuotaAnswer, leases: ConnectionLease[], wouldLimit: RateLimitRule[]): ClaimOutcome | undefined {
  if ('lease' in answer) {
    leases.push(answer.lease);
    return undefined;
  }
  if (!c.enforce) {
    wouldLimit.push(c.rule);
    return undefined;
  }
  for (const l of leases) l.release();
  return { refused: c.rule, retryAfterMs: answer.refusedForMs };
}
