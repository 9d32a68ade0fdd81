import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { RedisServer } from '../../../test/helpers/redis-server.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';
import { taskQueueDoc, WORKER_LABELS, workerBreakerDoc } from './helpers/queue-harness.ts';
import { WorkerApp } from './helpers/worker-app.ts';

let redis: RedisServer;
let app: WorkerApp;
let sc: RunningSidecar;

const breaker = workerBreakerDoc('4s');

beforeAll(async () => {
  redis = await RedisServer.start();
  app = await WorkerApp.start();
  const queue = taskQueueDoc('guarded-redrive', { concurrency: 1, retry: { maxAttempts: 1, backoff: { initial: '50ms', max: '50ms', multiplier: 1 } } });
  sc = await startSidecar([queue, breaker].map((d) => stringify(d)).join('---\n'), { redis: redis.url, appHttp: app.address, labels: WORKER_LABELS });
});
afterAll(async () => {
  await sc.stop(500);
  await app.close();
  await redis.stop();
});

async function circuitOpen(): Promise<boolean> {
  return /sluice_circuit_state\{rule="shop\/worker\/tasks"\} 1/.test(await (await fetch(`${sc.admin}/metrics`)).text());
}

async function progress(): Promise<{ state: string; moved: number }> {
  return (await (await fetch(`${sc.localApi}/v1/queues/guarded-redrive/dead-letters:redrive`)).json()) as { state: string; moved: number };
}

describe('a redrive behind the worker\'s open circuit (real sidecar)', () => {
  it('waits while the circuit is open and moves the dead letters once it lets calls through', { timeout: 60_000 }, async () => {
    app.behaviour = () => 500;
    await eventually(async () => expect((await fetch(`${sc.admin}/readyz`)).status).toBe(200));
    const res = await fetch(`${sc.localApi}/v1/queues/guarded-redrive/tasks:batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks: [1, 2, 3].map((n) => ({ payload: { n } })) }) });
    expect(res.status).toBe(202);
    await eventually(async () => expect(await circuitOpen()).toBe(true));
    await eventually(async () => expect(((await (await fetch(`${sc.localApi}/v1/queues/guarded-redrive`)).json()) as { deadLetters: number }).deadLetters).toBe(3));
    app.behaviour = () => 200;
    const delivered = app.deliveries.length;
    const started = await fetch(`${sc.localApi}/v1/queues/guarded-redrive/dead-letters:redrive`, { method: 'POST', body: '{"perSecond": 100}' });
    expect(started.status).toBe(202);
    await sleep(1_000);
    // Checked while the circuit is still open (openDuration 4 s): nothing moved, nothing delivered.
    const during = await progress();
    const stillOpen = await circuitOpen();
    expect(stillOpen).toBe(true);
    expect(during).toMatchObject({ state: 'running', moved: 0 });
    expect(app.deliveries.length).toBe(delivered);
    await eventually(async () => expect(await progress()).toMatchObject({ state: 'done', moved: 3 }), { timeoutMs: 20_000 });
    await eventually(() => expect(app.deliveries.length - delivered).toBe(3), { timeoutMs: 20_000 });
  });
});
