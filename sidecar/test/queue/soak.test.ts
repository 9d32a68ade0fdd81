import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { RedisServer } from '../../../test/helpers/redis-server.ts';
import { QueueHarness, taskQueueDoc, testQueueKeys } from './helpers/queue-harness.ts';
import { ProxyProcess, writeConfig } from './helpers/proxy-process.ts';
import { WorkerApp } from './helpers/worker-app.ts';

const TASKS = 10_000;
const WORKERS = 3;
const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  while (cleanup.length) await cleanup.pop()!().catch(() => {});
});

describe('soak', () => {
  it(`${TASKS} tasks over ${WORKERS} worker sidecars with random kill -9: none lost — each delivered at least once, applied once by an app idempotent on the task id`, { timeout: 120_000 }, async () => {
    const redis = await RedisServer.start();
    cleanup.push(() => redis.stop());
    const doc = taskQueueDoc('soak', {
      concurrency: 16,
      visibilityTimeout: '1s',
      retry: { maxAttempts: 20, backoff: { initial: '50ms', max: '500ms', multiplier: 2 } },
    });
    const config = writeConfig([doc]);

    // Sluice delivers at least once (a worker killed after the app's answer but before the ack
    // gets its task redelivered); the app uses the task id as its idempotency key, so a
    // redelivered task changes nothing twice.
    const sideEffects = new Map<string, number>();
    const seen = new Set<string>();
    let deliveries = 0;
    const behaviour = async (d: { id: string }) => {
      deliveries++;
      await sleep(5 + Math.random() * 15);
      if (!seen.has(d.id)) {
        seen.add(d.id);
        sideEffects.set(d.id, (sideEffects.get(d.id) ?? 0) + 1);
      }
      return 200;
    };
    const apps = await Promise.all(Array.from({ length: WORKERS }, () => WorkerApp.start(behaviour)));
    for (const a of apps) cleanup.push(() => a.close());
    const workers: ProxyProcess[] = [];
    const startWorker = async (i: number, id: string) => {
      workers[i] = await ProxyProcess.start({ id, config, redisUrl: redis.url, appHttp: apps[i]!.address });
    };
    await Promise.all(apps.map((_, i) => startWorker(i, `soak-${i}`)));
    cleanup.push(async () => Promise.all(workers.map((w) => w.kill9())));

    // Chaos: kill -9 a random live worker's sidecar every few hundred ms, from the first task to the
    // last, and bring it back — half the time under the same name (a restarted container), half
    // under a new one (a new pod).
    let kills = 0;
    const restarts: Promise<void>[] = [];
    let producing = true;
    const chaos = (async () => {
      while ((producing || sideEffects.size < TASKS) && kills < 15) {
        await sleep(300 + Math.random() * 400);
        const alive = workers.map((w, i) => [w, i] as const).filter(([w]) => w.alive);
        if (alive.length < 2) continue;
        const [victim, i] = alive[Math.floor(Math.random() * alive.length)]!;
        await victim.kill9();
        kills++;
        restarts.push(startWorker(i, kills % 2 === 0 ? `soak-${i}` : `soak-${i}-gen${kills}`));
      }
    })();

    const producer = await QueueHarness.start({ redisUrl: redis.url, docs: [doc], labels: { app: 'producer' } });
    cleanup.push(() => producer.close());
    const ids: string[] = [];
    for (let i = 0; i < TASKS; i += 50) {
      const { status, json } = await producer.postBatch('soak', Array.from({ length: 50 }, (_, j) => ({ payload: { order: i + j } })));
      expect(status).toBe(202);
      ids.push(...json.tasks.map((t) => t.id));
    }

    producing = false;

    await eventually(() => expect(sideEffects.size).toBe(TASKS), { timeoutMs: 90_000, intervalMs: 200 });
    await chaos;
    await Promise.all(restarts);
    expect(kills).toBeGreaterThan(0);
    expect(deliveries).toBeGreaterThanOrEqual(TASKS);
    expect(new Set(ids).size).toBe(TASKS);
    for (const id of ids) expect(sideEffects.get(id)).toBe(1);
    const enqueued = new Set(ids);
    expect([...sideEffects.keys()].every((id) => enqueued.has(id))).toBe(true);

    const r = new Redis(redis.url);
    cleanup.push(async () => r.disconnect());
    await eventually(async () => {
      const pending = (await r.call('XPENDING', testQueueKeys('soak').stream, 'soak-workers')) as [number];
      expect(pending[0]).toBe(0);
    }, { timeoutMs: 20_000 });
    expect(await r.xlen(testQueueKeys('soak').deadLetter!)).toBe(0);
    process.stdout.write(`soak: ${TASKS} tasks, ${deliveries} deliveries (${deliveries - TASKS} redelivered), ${kills} kill -9\n`);
  });
});
