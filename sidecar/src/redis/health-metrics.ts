import { Gauge, type Registry } from '../prom-client.ts';
import type { RedisHealth } from '../../../lib/redis/connection.ts';

/**
 * `sluice_redis_up{redis}`: 1 while a connection is ready, 0 otherwise. Read at scrape time from
 * the health trackers, so a connection that comes and goes costs nothing between scrapes.
 * `healths` is a function because features add and drop connections as plans change.
 */
export function registerRedisHealthMetrics(registry: Registry, healths: () => Iterable<RedisHealth>): Gauge<'redis'> {
  return new Gauge({
    name: 'sluice_redis_up',
    help: 'Whether each Redis connection (global limits, task queues, lock nodes) is ready: 1 up, 0 down or connecting.',
    labelNames: ['redis'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const h of healths()) this.set({ redis: h.name }, h.state === 'ready' ? 1 : 0);
    },
  });
}
