import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import type { Clock } from '../../../../lib/clock.ts';
import type { LimitSpec, RateLimitRule } from '../../../../lib/policy/plan.ts';
import type { Logger } from '../../log.ts';
import type { Decision, Limiter } from '../limiter.ts';
import { KeyedStore } from '../keyed-store.ts';
import { FailureModeFallback } from './fallback.ts';
import { bucketKey } from './keys.ts';
import { PartitionLease, defaultMaxBatch, type LeaseOptions } from './lease.ts';
import { globalLimitMetrics } from './metrics.ts';
import { OutageGate } from './outage-gate.ts';
import { RulePresence } from './presence.ts';
import { GCRA, SLIDING_WINDOW } from './scripts.ts';
import type { LuaScript } from '../../redis/lua-script.ts';

export type GlobalMode = 'lease' | 'strict';

export interface GlobalLimiterDeps {
  redis: Redis;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  /** This sidecar's identity in the presence set (pod name, or a random id). */
  sidecarId: string;
  /** `lease` (default): batches of tokens, answered locally; `strict`: one script call per decision. */
  mode?: GlobalMode;
  /** Lease tuning; defaults: maxBatch 0.5 % of capacity, leaseMs min(1 s, period / 10), horizonMs 100. */
  lease?: Partial<LeaseOptions>;
  /** Presence heartbeat period (ms, default 1000); sidecars missing 3 beats stop counting. */
  heartbeatMs?: number;
  /** How often a probe goes to Redis while it is down (ms, default 250). */
  probeEveryMs?: number;
}

interface ScriptAnswer {
  granted: number;
  remaining: number;
  retryAfterMs: number;
  resetMs: number;
}

/**
 * A `scope: Global` rule: one shared limit for every sidecar the rule selects, counted in Redis.
 *
 * Strict mode asks Redis for every decision. Lease mode (see lease.ts for the over-admission
 * bound) asks for batches and answers from them locally, synchronously — most decisions never
 * leave the process. Either way a decision takes at most the Redis command timeout: when Redis
 * fails, the failure mode answers (counted in sluice_ratelimit_global_fallbacks_total), and the
 * OutageGate keeps later decisions from waiting on a server that just failed.
 */
export class GlobalLimiter implements Limiter {
  readonly rule: RateLimitRule;
  readonly mode: GlobalMode;
  private readonly limit: LimitSpec;
  private readonly capacity: number;
  private readonly script: LuaScript;
  private readonly redis: Redis;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly gate: OutageGate;
  private readonly fallback: FailureModeFallback;
  private readonly presence: RulePresence | undefined;
  private readonly leaseOpts: LeaseOptions;
  private readonly leases: KeyedStore<PartitionLease>;
  private readonly fallbackCount: { inc(): void };
  private readonly callsOk: { inc(): void };
  private readonly callsError: { inc(): void };
  private readonly argsPrefix: readonly number[];

  constructor(rule: RateLimitRule, deps: GlobalLimiterDeps) {
    if (rule.limit === undefined) throw new RangeError(`rule ${rule.id} has no limit to share`);
    this.rule = rule;
    this.limit = rule.limit;
    this.mode = deps.mode ?? 'lease';
    this.redis = deps.redis;
    this.clock = deps.clock;
    this.logger = deps.logger.child({ rule: rule.id });
    this.script = this.limit.algorithm === 'SlidingWindow' ? SLIDING_WINDOW : GCRA;
    this.capacity = this.limit.algorithm === 'SlidingWindow' ? this.limit.requests : this.limit.burst;
    this.argsPrefix = [this.limit.perMs, this.limit.requests, this.capacity];
    this.gate = new OutageGate(deps.probeEveryMs ?? 250);
    this.fallback = new FailureModeFallback(rule.failureMode, this.limit);
    this.leaseOpts = {
      maxBatch: deps.lease?.maxBatch ?? defaultMaxBatch(this.capacity),
      leaseMs: deps.lease?.leaseMs ?? Math.min(1_000, this.limit.perMs / 10),
      horizonMs: deps.lease?.horizonMs ?? 100,
    };
    this.leases = new KeyedStore({ maxKeys: 100_000, create: () => new PartitionLease(this.clock.now()), isIdle: (s, now) => s.idle(now) });

    const metrics = globalLimitMetrics(deps.registry);
    // Label children bound once: the hot path only increments.
    this.fallbackCount = metrics.fallbacks.labels(rule.id, rule.failureMode);
    this.callsOk = metrics.redisCalls.labels(rule.id, 'ok');
    this.callsError = metrics.redisCalls.labels(rule.id, 'error');
    const peersGauge = metrics.peers.labels(rule.id);
    // Only an Open rule needs to know how many sidecars share it.
    this.presence = rule.failureMode === 'Open'
      ? new RulePresence({ redis: this.redis, ruleId: rule.id, sidecarId: deps.sidecarId, everyMs: deps.heartbeatMs ?? 1_000, onPeers: (n) => peersGauge.set(n) })
      : undefined;
  }

  /** Live sidecars sharing this rule as last seen (undefined until the first heartbeat). */
  get peers(): number | undefined {
    return this.presence?.peers;
  }

  get redisDown(): boolean {
    return this.gate.down;
  }

  consume(key: string, now: number): Decision | Promise<Decision> {
    if (this.mode === 'strict') return this.consumeStrict(key, now);
    const lease = this.leases.get(key, now);
    if (lease.take(now)) {
      if (lease.wantsRefill(now, this.leaseOpts) && this.gate.allows(now)) void this.refill(key, lease);
      return this.leased(lease, now);
    }
    if (now < lease.deniedUntil) return this.denied(lease.deniedUntil - now, lease.sharedRemaining, lease.resetAt - now);
    return this.awaitRefill(key, lease, now);
  }

  close(): void {
    this.presence?.close();
  }

  private async awaitRefill(key: string, lease: PartitionLease, now: number): Promise<Decision> {
    // A batch that arrives may be spent by the requests that waited with this one before this one
    // looks; then it asks again — a bounded number of times, each one a Redis answer, not a wait.
    for (let attempt = 0; attempt < 3; attempt++) {
      const t = attempt === 0 ? now : this.clock.now();
      if (lease.refill === undefined) {
        if (!this.gate.allows(t)) return this.fallBack(key, t);
        void this.refill(key, lease);
      }
      const answered = await lease.refill;
      const after = this.clock.now();
      if (!answered) return this.fallBack(key, after);
      // take() counted this request as demand already; this second look must not count it again.
      if (lease.tokens > 0 && after < lease.expiresAt) {
        lease.tokens--;
        return this.leased(lease, after);
      }
      if (after < lease.deniedUntil) return this.denied(lease.deniedUntil - after, lease.sharedRemaining, lease.resetAt - after);
    }
    return this.denied(1, lease.sharedRemaining, lease.resetAt - this.clock.now());
  }

  /** One call for a batch; concurrent requests of the partition share it (single flight). */
  private refill(key: string, lease: PartitionLease): Promise<boolean> {
    const sentAt = this.clock.now();
    const { want, min } = lease.nextBatch(sentAt, this.leaseOpts);
    const done = this.call(key, want, min).then((answer) => {
      lease.refill = undefined;
      if (answer === undefined) return false;
      lease.settle(answer, sentAt, this.clock.now(), this.leaseOpts);
      return true;
    });
    lease.refill = done;
    return done;
  }

  private async consumeStrict(key: string, now: number): Promise<Decision> {
    if (!this.gate.allows(now)) return this.fallBack(key, now);
    const answer = await this.call(key, 1, 1);
    if (answer === undefined) return this.fallBack(key, this.clock.now());
    if (answer.granted > 0) return { allowed: true, limit: this.capacity, remaining: answer.remaining, resetMs: answer.resetMs, retryAfterMs: 0 };
    return this.denied(answer.retryAfterMs, answer.remaining, answer.resetMs);
  }

  /** The script call; `undefined` when Redis failed (already recorded in the gate and metrics). */
  private async call(key: string, want: number, min: number): Promise<ScriptAnswer | undefined> {
    try {
      const r = (await this.script.run(this.redis, [bucketKey(this.rule.id, key)], [...this.argsPrefix, want, min])) as number[];
      this.callsOk.inc();
      this.gate.succeeded();
      return { granted: Number(r[0]), remaining: Number(r[1]), retryAfterMs: Number(r[2]), resetMs: Number(r[3]) };
    } catch (err) {
      this.callsError.inc();
      if (!this.gate.down) this.logger.warn('redis unavailable: global limit falls back', { failureMode: this.rule.failureMode, error: err });
      this.gate.failed(this.clock.now());
      return undefined;
    }
  }

  private fallBack(key: string, now: number): Decision {
    this.fallbackCount.inc();
    return this.fallback.decide(key, now, this.presence?.peers, this.gate.retryAfterMs(now));
  }

  private leased(lease: PartitionLease, now: number): Decision {
    return {
      allowed: true,
      limit: this.capacity,
      remaining: Math.max(0, lease.sharedRemaining) + lease.tokens,
      resetMs: Math.max(0, Math.ceil(lease.resetAt - now)),
      retryAfterMs: 0,
    };
  }

  private denied(retryAfterMs: number, remaining: number, resetMs: number): Decision {
    return { allowed: false, limit: this.capacity, remaining: Math.max(0, remaining), resetMs: Math.max(0, Math.ceil(resetMs)), retryAfterMs: Math.max(1, Math.ceil(retryAfterMs)) };
  }
}
