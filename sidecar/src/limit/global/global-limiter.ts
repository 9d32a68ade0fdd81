import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import type { Clock } from '../../../../lib/clock.ts';
import type { LimitSpec, RateLimitRule } from '../../../../lib/policy/plan.ts';
import type { Logger } from '../../../../lib/log.ts';
import type { Decision, Limiter } from '../limiter.ts';
import { KeyedStore } from '../keyed-store.ts';
import { FailureModeFallback } from './fallback.ts';
import { rateLimitBucketKey, rateLimitWarmBucketKey } from '../../../../lib/redis/key-layout.ts';
import { PartitionLease, defaultMaxBatch, type LeaseOptions } from './lease.ts';
import { GlobalLimitCounts, globalLimitMetrics } from './metrics.ts';
import { OutageGate } from './outage-gate.ts';
import { RulePresence } from './presence.ts';
import { GCRA, GCRA_WARM, SLIDING_WINDOW, SLIDING_WINDOW_WARM, gcraAnswer, gcraWarmAnswer, slidingWindowAnswer, type ScriptAnswer } from './scripts.ts';
import { isNoScript, type LuaScript } from '../../redis/lua-script.ts';
import { batchWritesThisTurn } from '../../redis/write-batching.ts';

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
  private readonly counts: GlobalLimitCounts;
  private readonly untrack: () => void;
  /** The script's ARGV after the key: period, requests, capacity (want and min appended per call). */
  private readonly argsPrefix: readonly string[];
  /** KEYS + ARGV of a strict call, all but the key fixed: want = min = 1. */
  private readonly strictArgv: string[];
  private readonly decode: (reply: unknown, min: number) => ScriptAnswer;
  private readonly bucketKey: (ruleId: string, partition: string) => string;
  /** Warm-up's ARGV after want and min (none without warm-up). */
  private readonly warmArgs: readonly string[];

  constructor(rule: RateLimitRule, deps: GlobalLimiterDeps) {
    if (rule.limit === undefined) throw new RangeError(`rule ${rule.id} has no limit to share`);
    this.rule = rule;
    this.limit = rule.limit;
    this.mode = deps.mode ?? 'lease';
    this.redis = deps.redis;
    this.clock = deps.clock;
    this.logger = deps.logger.child({ rule: rule.id });
    // With warm-up the coldness lives in Redis beside the counter, so a sidecar that restarts
    // does not cold-start a limit the others keep warm.
    const warm = this.limit.warmUp;
    const sliding = this.limit.algorithm === 'SlidingWindow';
    this.script = sliding ? (warm ? SLIDING_WINDOW_WARM : SLIDING_WINDOW) : (warm ? GCRA_WARM : GCRA);
    this.bucketKey = warm && !sliding ? rateLimitWarmBucketKey : rateLimitBucketKey;
    this.capacity = sliding ? this.limit.requests : this.limit.burst;
    this.argsPrefix = [String(this.limit.perMs), String(this.limit.requests), String(this.capacity)];
    this.strictArgv = ['', ...this.argsPrefix, '1', '1', ...(warm ? [String(warm.periodMs), String(warm.coldFactor)] : [])];
    const { perMs, requests } = this.limit;
    const capacity = this.capacity;
    const gcra = warm ? gcraWarmAnswer : gcraAnswer;
    this.decode = sliding
      ? (reply) => slidingWindowAnswer(reply)
      : (reply, min) => gcra(reply, perMs, requests, capacity, min);
    this.warmArgs = warm ? [String(warm.periodMs), String(warm.coldFactor)] : [];
    this.gate = new OutageGate(deps.probeEveryMs ?? 250);
    this.fallback = new FailureModeFallback(rule.failureMode, this.limit);
    this.leaseOpts = {
      maxBatch: deps.lease?.maxBatch ?? defaultMaxBatch(this.capacity),
      leaseMs: deps.lease?.leaseMs ?? Math.min(1_000, this.limit.perMs / 10),
      horizonMs: deps.lease?.horizonMs ?? 100,
    };
    this.leases = new KeyedStore({ maxKeys: 100_000, create: () => new PartitionLease(this.clock.now()), isIdle: (s, now) => s.idle(now) });

    const metrics = globalLimitMetrics(deps.registry);
    // Plain numbers on the hot path, moved into the counters when they are collected.
    this.counts = new GlobalLimitCounts(rule.id, rule.failureMode);
    this.untrack = metrics.track(this.counts);
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
    if (now < lease.deniedUntil) {
      this.leases.protect(key);
      return this.denied(lease.deniedUntil - now, lease.sharedRemaining, lease.resetAt - now);
    }
    return this.awaitRefill(key, lease, now);
  }

  close(): void {
    this.presence?.close();
    this.untrack();
  }

  private async awaitRefill(key: string, lease: PartitionLease, now: number): Promise<Decision> {
    // A batch that arrives may be spent by the requests that waited with this one before this one
    // looks; then it asks again — with a batch sized for everyone still waiting, so the second
    // call normally serves them all. A bounded number of times, each one a Redis answer, not a wait.
    lease.waiting++;
    try {
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
    } finally {
      lease.waiting--;
    }
  }

  /** One call for a batch; concurrent requests of the partition share it (single flight). */
  private refill(key: string, lease: PartitionLease): Promise<boolean> {
    const sentAt = this.clock.now();
    const batch = lease.nextBatch(sentAt, this.leaseOpts);
    const done = this.call(key, Math.max(batch.want, lease.waiting), batch.min).then((answer) => {
      lease.refill = undefined;
      if (answer === undefined) return false;
      lease.settle(answer, sentAt, this.clock.now(), this.leaseOpts);
      return true;
    });
    lease.refill = done;
    return done;
  }

  /**
   * One EVALSHA per decision and nothing else awaited: the reply and failure handlers are built
   * once (the failure one needs the partition for the fallback, so only it closes over the call).
   */
  private consumeStrict(key: string, now: number): Decision | Promise<Decision> {
    if (!this.gate.allows(now)) return this.fallBack(key, now);
    const argv = this.strictArgv;
    argv[0] = this.bucketKey(this.rule.id, key); // ioredis copies the list when it builds the command
    batchWritesThisTurn(this.redis);
    return this.script.evalsha(this.redis, argv).then(this.strictAnswered, (err: unknown) => this.strictFailed(err, key, argv[0] as string));
  }

  private readonly strictAnswered = (reply: unknown): Decision => {
    this.redisSucceeded();
    const a = this.decode(reply, 1);
    if (a.granted > 0) return { allowed: true, limit: this.capacity, remaining: a.remaining, resetMs: a.resetMs, retryAfterMs: 0 };
    return this.denied(a.retryAfterMs, a.remaining, a.resetMs);
  };

  private strictFailed(err: unknown, key: string, redisKey: string): Decision | Promise<Decision> {
    if (isNoScript(err)) {
      return this.script.eval(this.redis, [redisKey, ...this.argsPrefix, '1', '1', ...this.warmArgs]).then(this.strictAnswered, (e: unknown) => this.strictFailed(e, key, redisKey));
    }
    this.redisFailed(err);
    return this.fallBack(key, this.clock.now());
  }

  /** The script call; `undefined` when Redis failed (already recorded in the gate and metrics). */
  private async call(key: string, want: number, min: number): Promise<ScriptAnswer | undefined> {
    try {
      batchWritesThisTurn(this.redis);
      const reply = await this.script.run(this.redis, [this.bucketKey(this.rule.id, key)], [...this.argsPrefix, want, min, ...this.warmArgs]);
      this.redisSucceeded();
      return this.decode(reply, min);
    } catch (err) {
      this.redisFailed(err);
      return undefined;
    }
  }

  private redisSucceeded(): void {
    this.counts.redisOk++;
    this.gate.succeeded();
  }

  private redisFailed(err: unknown): void {
    this.counts.redisError++;
    if (!this.gate.down) this.logger.warn('redis unavailable: global limit falls back', { failureMode: this.rule.failureMode, error: err });
    this.gate.failed(this.clock.now());
  }

  private fallBack(key: string, now: number): Decision {
    this.counts.fallbacks++;
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
