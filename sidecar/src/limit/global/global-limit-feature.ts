import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import type { Clock } from '../../../../lib/clock.ts';
import type { RateLimitRule } from '../../../../lib/policy/plan.ts';
import type { Logger } from '../../../../lib/log.ts';
import { RedisHealth, connectRedis, redactUrl } from '../../../../lib/redis/connection.ts';
import { loadScriptsOn } from '../../redis/lua-script.ts';
import { GlobalLimiter, type GlobalMode } from './global-limiter.ts';
import { GCRA, HEARTBEAT, SLIDING_WINDOW } from './scripts.ts';
import { ACQUIRE, GlobalConnectionQuota, RENEW } from '../../websocket/global-connection-quota.ts';

/**
 * `scope: Global` rate limits for a sidecar started with `--redis`: the connection they share, the
 * factory the policy engine calls per Global rule, and Redis health for /readyz. A Redis that is
 * down does not make the pod unready — Global rules answer by their failureMode meanwhile.
 */
export class GlobalLimitFeature {
  readonly name = 'global-limits';
  readonly redis: Redis;
  readonly health: RedisHealth;
  private readonly limiters = new Set<GlobalLimiter>();
  /** Global WebSocket maxConnectionsPerKey quotas (one per rule). */
  private readonly connectionQuotas = new Set<GlobalConnectionQuota>();
  private readonly deps: { clock: Clock; logger: Logger; registry: Registry; sidecarId: string; mode: GlobalMode };
  private readonly connectionLeaseMs: number | undefined;

  constructor(opts: {
    url: string; clock: Clock; logger: Logger; registry: Registry; sidecarId: string; mode?: GlobalMode; commandTimeoutMs?: number;
    /** How long a Global connection slot outlives a sidecar that stopped renewing it (default 30 s). */
    connectionLeaseMs?: number;
  }) {
    this.redis = connectRedis({ url: opts.url, name: 'global-limits', commandTimeoutMs: opts.commandTimeoutMs ?? 100 });
    this.health = new RedisHealth('global-limits', this.redis);
    loadScriptsOn(this.redis, [GCRA, SLIDING_WINDOW, HEARTBEAT, ACQUIRE, RENEW]);
    this.deps = { clock: opts.clock, logger: opts.logger, registry: opts.registry, sidecarId: opts.sidecarId, mode: opts.mode ?? 'lease' };
    this.connectionLeaseMs = opts.connectionLeaseMs;
    opts.logger.info('global limits on redis', { url: redactUrl(opts.url), mode: this.deps.mode });
  }

  /** The policy engine's GlobalLimiterFactory; the engine closes limiters of rules that went away. */
  readonly factory = (rule: RateLimitRule): GlobalLimiter & { close(): void } => {
    const limiter = new GlobalLimiter(rule, { redis: this.redis, ...this.deps });
    this.limiters.add(limiter);
    const close = limiter.close.bind(limiter);
    limiter.close = () => {
      this.limiters.delete(limiter);
      close();
    };
    return limiter;
  };

  /** The policy engine's GlobalConnectionQuotaFactory (WebSocket maxConnectionsPerKey, scope Global). */
  readonly connectionQuotaFactory = (rule: RateLimitRule): GlobalConnectionQuota => {
    const quota: GlobalConnectionQuota = new GlobalConnectionQuota(rule, {
      redis: this.redis, clock: this.deps.clock, logger: this.deps.logger, sidecarId: this.deps.sidecarId, leaseMs: this.connectionLeaseMs,
      onRetired: () => this.connectionQuotas.delete(quota),
    });
    this.connectionQuotas.add(quota);
    return quota;
  };

  redisHealths(): readonly RedisHealth[] {
    return [this.health];
  }

  readiness(): { name: string; check(): { ok: boolean; details?: unknown } } {
    return { name: 'redis', check: () => ({ ok: true, details: { ...this.health.toJSON(), globalRules: this.limiters.size } }) };
  }

  status(): unknown {
    return {
      redis: this.health.toJSON(),
      rules: [...this.limiters].map((l) => ({ rule: l.rule.id, mode: l.mode, failureMode: l.rule.failureMode, peers: l.peers ?? null, redisDown: l.redisDown })),
      connectionQuotas: [...this.connectionQuotas].map((q) => ({ rule: q.rule.id, open: q.open, redisDown: q.redisDown })),
    };
  }

  async close(graceMs = 0): Promise<void> {
    // Shutdown closes WebSocket connections meanwhile (spread over the drain window): their slots
    // are given back one by one, so clients reconnecting elsewhere find them free, not held until
    // their leases run out.
    await Promise.all([...this.connectionQuotas].map((q) => q.idle(graceMs)));
    for (const l of [...this.limiters]) l.close();
    // QUIT is answered after the commands sent before it (the last slot releases, presence
    // removals); a Redis that does not answer is not waited for beyond a moment.
    const quit = this.redis.status === 'ready' ? this.redis.quit().catch(() => {}) : undefined;
    if (quit) await Promise.race([quit, new Promise((r) => setTimeout(r, 500).unref())]);
    this.redis.disconnect();
  }
}
