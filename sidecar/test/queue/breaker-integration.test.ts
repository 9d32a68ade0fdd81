import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/eventually.ts';
import { RedisServer } from '../../../test/helpers/redis-server.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';
import { taskQueueDoc, WORKER_LABELS, workerBreakerDoc } from './helpers/queue-harness.ts';
import { WorkerApp } from './helpers/worker-app.ts';

let redis: RedisServer;
let app: WorkerApp;
let sc: RunningSidecar;

const breaker = workerBreakerDoc('1500ms');

beforeAll(async () => {
  redis = await RedisServer.start();
  app = await WorkerApp.start();
  const queue = taskQueueDoc('guarded', { concurrency: 1, retry: { maxAttempts: 50, backoff: { initial: '50ms', max: '50ms', multiplier: 1 } } });
  sc = await startSidecar([queue, breaker].map((d) => stringify(d)).join('---\n'), { redis: redis.url, appHttp: app.address, labels: WORKER_LABELS });
});
afterAll(async () => {
  await sc.stop(500);
  await app.close();
  await redis.stop();
});

describe('a TaskQueue behind the worker\'s CircuitBreakerPolicy (real sidecar)', () => {
  it('failing deliveries open the breaker, consumption pauses instead of burning attempts, and resumes once the app recovers', async () => {
    app.behaviour = () => 500;
    await eventually(async () => expect((await fetch(`${sc.admin}/readyz`)).status).toBe(200));
    const res = await fetch(`${sc.localApi}/v1/queues/guarded/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"order":1}' });
    expect(res.status).toBe(202);
    // Three failed deliveries trip the breaker (consecutiveFailures: 3) ...
    await eventually(async () => expect(await (await fetch(`${sc.admin}/metrics`)).text()).toMatch(/sluice_circuit_state\{rule="shop\/worker\/tasks"\} 1/));
    const attemptsWhenOpened = app.deliveries.length;
    expect(attemptsWhenOpened).toBeGreaterThanOrEqual(3);
    // ... and while it is open (1.5 s) no attempt is spent, though the retry backoff is 50 ms.
    await new Promise((r) => setTimeout(r, 800));
    expect(app.deliveries.length).toBe(attemptsWhenOpened);
    app.behaviour = () => 200;
    await eventually(() => expect(app.deliveries.at(-1)?.attempt).toBe(attemptsWhenOpened + 1), { timeoutMs: 10_000 });
    await eventually(async () => expect(await (await fetch(`${sc.admin}/metrics`)).text()).toMatch(/sluice_circuit_state\{rule="shop\/worker\/tasks"\} 0/));
  });
});
