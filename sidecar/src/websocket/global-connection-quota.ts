import type { Redis } from 'ioredis';
import type { Clock } from '../../../lib/clock.ts';
import type { Logger } from '../../../lib/log.ts';
import type { FailureMode } from '../../../lib/policy/types.ts';
import type { RateLimitRule } from '../../../lib/policy/plan.ts';
import { connectionsKey } from '../../../lib/redis/key-layout.ts';
import { OutageGate } from '../limit/global/outage-gate.ts';
import { LuaScript } from '../redis/lua-script.ts';
import { batchWritesThisTurn } from '../redis/write-batching.ts';
import { QUOTA_RETRY_AFTER_MS, type ConnectionLease, type ConnectionQuota, type QuotaAnswer } from './connection-quota.ts';

/*
 * A Global maxConnectionsPerKey: every sidecar of the rule counts one key's connections in one
 * sorted set, `sluice:ws:{ns/policy/rule}:<key>` (one hash slot per rule), whose members are
 * connection ids scored by the server time at which their lease runs out. A sidecar renews the
 * leases of its open connections every leaseMs / 3 and removes a connection when it ends; if the
 * sidecar dies, its connections stop being renewed and drop out within leaseMs — the slots of a
 * crashed pod come back by themselves.
 */

/**
 * KEYS[1] the key's set   ARGV[1] connection id   ARGV[2] max   ARGV[3] lease (ms)
 * → { admitted 0|1, open connections after the call }. Expired leases are dropped first; the set
 * lives as long as its newest lease.
 */
export const ACQUIRE = new LuaScript(
  `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[2]) then return { 0, n } end
local lease = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
return { 1, n + 1 }
`,
  1,
);

/**
 * KEYS[1] the key's set   ARGV[1] lease (ms)   ARGV[2..] connection ids
 * Renews (or re-adds, after an outage in which they were admitted locally) this sidecar's
 * connections under one key.
 */
export const RENEW = new LuaScript(
  `
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], expiry, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return #ARGV - 1
`,
  1,
);

export interface GlobalConnectionQuotaDeps {
  redis: Redis;
  clock: Clock;
  logger: Logger;
  /** This sidecar's identity; connection ids are `<sidecarId>/<n>`. */
  sidecarId: string;
  /** How long a connection's slot outlives its sidecar's last renewal (default 30 s). */
  leaseMs?: number;
  /** How often a probe goes to Redis while it is down (ms, default 250). */
  probeEveryMs?: number;
  /** Called once the quota is closed and its last connection has ended. */
  onRetired?: () => void;
}

export class GlobalConnectionQuota implements ConnectionQuota {
  readonly rule: RateLimitRule;
  readonly leaseMs: number;
  private readonly redis: Redis;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly sidecarId: string;
  private readonly failureMode: FailureMode;
  private readonly gate: OutageGate;
  /** This sidecar's open connections by key: what it renews, and what failureMode Open counts. */
  private readonly held = new Map<string, Set<string>>();
  private heldCount = 0;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];
  private closed = false;
  private readonly onRetired: (() => void) | undefined;

  constructor(rule: RateLimitRule, deps: GlobalConnectionQuotaDeps) {
    this.rule = rule;
    this.redis = deps.redis;
    this.clock = deps.clock;
    this.logger = deps.logger.child({ rule: rule.id });
    this.sidecarId = deps.sidecarId;
    this.failureMode = rule.failureMode;
    this.leaseMs = deps.leaseMs ?? 30_000;
    this.gate = new OutageGate(deps.probeEveryMs ?? 250);
    this.onRetired = deps.onRetired;
  }

  /** Connections this sidecar holds under the rule. */
  get open(): number {
    return this.heldCount;
  }

  get redisDown(): boolean {
    return this.gate.down;
  }

  acquire(key: string, max: number): QuotaAnswer | Promise<QuotaAnswer> {
    const id = `${this.sidecarId}/${++this.seq}`;
    const now = this.clock.now();
    if (!this.gate.allows(now)) return this.fallBack(key, id, max, now);
    batchWritesThisTurn(this.redis);
    return ACQUIRE.run(this.redis, [connectionsKey(this.rule.id, key)], [id, max, this.leaseMs]).then(
      (reply) => {
        this.gate.succeeded();
        const admitted = (reply as [number, number])[0] === 1;
        return admitted ? { lease: this.hold(key, id) } : { refusedForMs: QUOTA_RETRY_AFTER_MS };
      },
      (err: unknown) => {
        if (!this.gate.down) this.logger.warn('redis unavailable: connection quota falls back', { failureMode: this.failureMode, error: err });
        this.gate.failed(this.clock.now());
        // The call may have run after all (a timeout is not a refusal): take the id back.
        this.redis.zrem(connectionsKey(this.rule.id, key), id).catch(() => {});
        return this.fallBack(key, id, max, this.clock.now());
      },
    );
  }

  /**
   * Redis cannot answer. Open: this sidecar's own count of the key decides (a client can then hold
   * up to `max` per sidecar until Redis is back; the next renewal registers these connections);
   * Closed: refused until the next probe.
   */
  private fallBack(key: string, id: string, max: number, now: number): QuotaAnswer {
    if (this.failureMode === 'Closed') return { refusedForMs: Math.max(1_000, this.gate.retryAfterMs(now)) };
    if ((this.held.get(key)?.size ?? 0) >= max) return { refusedForMs: QUOTA_RETRY_AFTER_MS };
    return { lease: this.hold(key, id) };
  }

  private hold(key: string, id: string): ConnectionLease {
    let ids = this.held.get(key);
    if (!ids) {
      ids = new Set();
      this.held.set(key, ids);
    }
    ids.add(id);
    this.heldCount++;
    this.timer ??= setInterval(() => this.renew(), Math.max(10, Math.floor(this.leaseMs / 3))).unref();
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.releaseId(key, id);
      },
    };
  }

  private releaseId(key: string, id: string): void {
    const ids = this.held.get(key);
    if (!ids?.delete(id)) return;
    if (ids.size === 0) this.held.delete(key);
    this.heldCount--;
    // Best effort: if it fails the lease simply runs out.
    batchWritesThisTurn(this.redis);
    this.redis.zrem(connectionsKey(this.rule.id, key), id).catch(() => {});
    if (this.heldCount === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      for (const w of this.idleWaiters.splice(0)) w();
      if (this.closed) this.onRetired?.();
    }
  }

  /** One script call per key held; their writes go out together. */
  renew(): void {
    const now = this.clock.now();
    if (!this.gate.allows(now)) return;
    batchWritesThisTurn(this.redis);
    for (const [key, ids] of this.held) {
      RENEW.run(this.redis, [connectionsKey(this.rule.id, key)], [this.leaseMs, ...ids]).then(
        () => this.gate.succeeded(),
        (err: unknown) => {
          if (!this.gate.down) this.logger.warn('redis unavailable: connection leases not renewed', { error: err });
          this.gate.failed(this.clock.now());
        },
      );
    }
  }

  /** Resolves once every connection this quota admitted has ended, or after `ms`. */
  idle(ms: number): Promise<void> {
    if (this.heldCount === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /**
   * The rule went away or changed its key. Connections admitted under it stay open, so their
   * leases keep being renewed until the last one ends (then the timer stops by itself).
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.heldCount === 0) this.onRetired?.();
  }
}
