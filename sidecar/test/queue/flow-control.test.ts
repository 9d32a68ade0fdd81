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

describe('flow control', () => {
  it('spec.rateLimit caps consumption', async () => {
    const app = await WorkerApp.start();
    const h = await QueueHarness.start({ redisUrl: redis.url, docs: [taskQueueDoc('paced', { rateLimit: { requests: 5, per: '1s' }, concurrency: 50 })], appHttp: app.address });
    cleanup.push(() => app.close(), () => h.close());
    const start = Date.now();
    await h.postBatch('paced', Array.from({ length: 15 }, (_, i) => ({ payload: i })));
    await sleep(1_000);
    // A burst of one period (5) plus 5/s for the time that passed, and one for rounding.
    const allowed = (ms: number) => 5 + Math.ceil((5 * ms) / 1_000) + 1;
    expect(app.deliveries.length).toBeLessThanOrEqual(allowed(Date.now() - start));
    await eventually(() => expect(app.deliveries).toHaveLength(15), { timeoutMs: 10_000 });
    for (const d of app.deliveries) expect(app.deliveries.filter((x) => x.at <= d.at).length).toBeLessThanOrEqual(allowed(d.at - start));
  });

  it('pauses while the circuit is open instead of burning attempts, and resumes when it closes', async () => {
    const app = await WorkerApp.start();
    let open = true;
    const h = await QueueHarness.start({
      redisUrl: redis.url,
      docs: [taskQueueDoc('breaker')],
      appHttp: app.address,
      deps: { circuit: { isOpen: () => open } },
    });
    cleanup.push(() => app.close(), () => h.close());
    await h.postBatch('breaker', [{ payload: 1 }, { payload: 2 }]);
    await sleep(600);
    expect(app.deliveries).toHaveLength(0);
    expect(h.feature.status()).toMatchObject({ consumers: [{ state: 'paused' }] });
    open = false;
    await eventually(() => expect(app.deliveries.map((d) => d.attempt)).toEqual([1, 1]));
  });
});
