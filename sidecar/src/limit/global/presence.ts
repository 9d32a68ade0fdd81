import type { Redis } from 'ioredis';
import { HEARTBEAT } from './scripts.ts';
import { rateLimitPresenceKey as presenceKey } from '../../../../lib/redis/key-layout.ts';

/**
 * This sidecar's heartbeat for one Global rule, and the count of live sidecars sharing it that the
 * heartbeat returns. The failureMode Open fallback divides the limit by that count; it keeps the
 * last count it saw while Redis is away (the best estimate there is) and is `undefined` until the
 * first beat succeeds — then the fallback uses the whole limit.
 */
export class RulePresence {
  peers: number | undefined = undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly redis: Redis;
  private readonly key: string;
  private readonly sidecarId: string;
  private readonly expiryMs: number;
  private readonly onPeers: (n: number) => void;

  constructor(opts: { redis: Redis; ruleId: string; sidecarId: string; everyMs: number; onPeers: (n: number) => void }) {
    this.redis = opts.redis;
    this.key = presenceKey(opts.ruleId);
    this.sidecarId = opts.sidecarId;
    // Three missed beats and a sidecar counts as gone.
    this.expiryMs = opts.everyMs * 3;
    this.onPeers = opts.onPeers;
    this.timer = setInterval(() => void this.beat(), opts.everyMs);
    this.timer.unref();
    void this.beat();
  }

  async beat(): Promise<void> {
    try {
      const n = Number(await HEARTBEAT.run(this.redis, [this.key], [this.sidecarId, this.expiryMs]));
      if (n >= 1) {
        this.peers = n;
        this.onPeers(n);
      }
    } catch {
      // Redis away: keep the last count; the limiter's own calls report the outage.
    }
  }

  /** Stops beating and leaves the set, so the others' share grows at once (best effort). */
  close(): void {
    clearInterval(this.timer);
    this.redis.zrem(this.key, this.sidecarId).catch(() => {});
  }
}
