import { describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { useCleanup, useRedisServer } from '../../../test/helpers/fixtures.ts';
import type { RedisServer } from '../../../test/helpers/redis-server.ts';
import { QueueHarness, taskQueueDoc } from './helpers/queue-harness.ts';
import { WorkerApp } from './helpers/worker-app.ts';

let redis: RedisServer;
useRedisServer((server) => {
  redis = server;
});
const cleanup = useCleanup();

describe('adaptive worker concurrency (real redis-server, real worker over HTTP)', () => {
  it('backs off on 503s from an overloaded worker and grows again when the worker is healthy', async () => {
    // The worker copes with 4 tasks at once; past that it answers 503 at once.
    let atWorker = 0;
    let healthy = false;
    const app = await WorkerApp.start(async () => {
      atWorker++;
      try {
        if (!healthy && atWorker > 4) return 503;
        await sleep(healthy ? 5 : 20);
        return 200;
      } finally {
        atWorker--;
      }
    });
    const h = await QueueHarness.start({
      redisUrl: redis.url,
      docs: [taskQueueDoc('adaptive', {
        concurrency: 32,
        adaptiveConcurrency: { min: 1, max: 64 },
        retry: { maxAttempts: 100, backoff: { initial: '10ms', max: '100ms', multiplier: 2 } },
      })],
      appHttp: app.address,
    });
    cleanup.push(() => app.close(), () => h.close());
    const limit = () => (h.feature.status() as { consumers: { concurrency: number }[] }).consumers[0]!.concurrency;
    expect(limit()).toBe(1); // first the worker's no-load latency is measured, at min

    const feed = async (n: number) => {
      for (let i = 0; i < n; i += 100) await h.postBatch('adaptive', Array.from({ length: Math.min(100, n - i) }, (_, j) => ({ payload: i + j })));
    };
    await feed(1500);
    // Measured, the limit starts from `concurrency` (32), then backs off under the 503s.
    await eventually(() => expect(limit()).toBeGreaterThanOrEqual(16), { timeoutMs: 30_000, intervalMs: 5 });
    await eventually(() => expect(limit()).toBeLessThanOrEqual(8), { timeoutMs: 30_000, intervalMs: 50 });
    const refusedBefore = app.deliveries.length;
    expect(refusedBefore).toBeGreaterThan(0);

    healthy = true;
    let fed = 0;
    await eventually(async () => {
      if (fed++ % 10 === 0) await feed(300); // keep the worker busy while the limit climbs
      expect(limit()).toBeGreaterThanOrEqual(16);
    }, { timeoutMs: 30_000, intervalMs: 100 });
    const metrics = await h.registry.metrics();
    expect(metrics).toMatch(/sluice_queue_concurrency_limit\{queue="adaptive"\} \d+/);
  }, 90_000);
});
