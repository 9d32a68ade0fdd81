import { describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { useCleanup, useRedisServer } from '../../../test/helpers/fixtures.ts';
import type { RedisServer } from '../../../test/helpers/redis-server.ts';
import { taskQueueDoc } from './helpers/queue-harness.ts';
import { ProxyProcess, writeConfig } from './helpers/proxy-process.ts';
import { WorkerApp } from './helpers/worker-app.ts';

let redis: RedisServer;
useRedisServer((server) => {
  redis = server;
});
const cleanup = useCleanup();

async function worker(id: string, config: string, app: WorkerApp): Promise<ProxyProcess> {
  const p = await ProxyProcess.start({ id, config, redisUrl: redis.url, appHttp: app.address });
  cleanup.push(() => p.kill9());
  return p;
}

async function app(): Promise<WorkerApp> {
  const a = await WorkerApp.start();
  cleanup.push(() => a.close());
  return a;
}

const never = () => new Promise<number>(() => {});

async function post(p: ProxyProcess, queue: string, body: unknown): Promise<string> {
  const res = await fetch(`${p.localApi}/v1/queues/${queue}/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function stats(p: ProxyProcess, queue: string): Promise<{ pending: number; lag: number }> {
  return (await (await fetch(`${p.localApi}/v1/queues/${queue}`)).json()) as { pending: number; lag: number };
}

async function metric(p: ProxyProcess, line: string): Promise<number> {
  const text = await (await fetch(`${p.admin}/metrics`)).text();
  const row = text.split('\n').find((l) => l.startsWith(line));
  return row ? Number(row.slice(row.lastIndexOf(' ') + 1)) : 0;
}

describe('crash safety (real sluice-proxy processes)', () => {
  it('kill -9 of the sidecar mid-task: another worker completes it as attempt 2', { timeout: 60_000 }, async () => {
    const config = writeConfig([taskQueueDoc('crash', { visibilityTimeout: '1500ms' })]);
    const appA = await app();
    const appB = await app();
    appA.behaviour = never;
    const a = await worker('worker-a', config, appA);
    const id = await post(a, 'crash', { order: 1 });
    await eventually(() => expect(appA.ids()).toEqual([id]));
    const b = await worker('worker-b', config, appB);
    await a.kill9();
    await eventually(() => expect(appB.deliveries.map((d) => [d.id, d.attempt])).toEqual([[id, 2]]), { timeoutMs: 15_000 });
    await eventually(async () => expect(await stats(b, 'crash')).toMatchObject({ pending: 0, lag: 0 }));
    expect(await metric(b, 'sluice_queue_tasks_total{queue="crash",result="reclaimed"}')).toBe(1);
  });

  it('a live worker keeps its claim fresh: a task slower than the visibility timeout is delivered once', { timeout: 60_000 }, async () => {
    const config = writeConfig([taskQueueDoc('slowpoke', { visibilityTimeout: '1s', delivery: { protocol: 'http', path: '/tasks', timeout: '30s' } })]);
    const appA = await app();
    const appB = await app();
    appA.behaviour = () => sleep(4_000).then(() => 200);
    const a = await worker('slow-a', config, appA);
    const id = await post(a, 'slowpoke', {});
    await eventually(() => expect(appA.ids()).toEqual([id]));
    await worker('slow-b', config, appB);
    await eventually(async () => expect(await metric(a, 'sluice_queue_tasks_total{queue="slowpoke",result="acked"}')).toBe(1), { timeoutMs: 10_000 });
    expect(appB.deliveries).toHaveLength(0);
    expect(appA.deliveries).toHaveLength(1);
  });

  it('a late result from a worker whose claim was taken is not acknowledged and is counted', { timeout: 60_000 }, async () => {
    const config = writeConfig([taskQueueDoc('late', { visibilityTimeout: '1s' })]);
    const appA = await app();
    const appB = await app();
    let release!: () => void;
    appA.behaviour = () => new Promise<number>((res) => (release = () => res(200)));
    const a = await worker('late-a', config, appA);
    const id = await post(a, 'late', {});
    await eventually(() => expect(appA.ids()).toEqual([id]));
    const b = await worker('late-b', config, appB);
    // The sidecar freezes (a long GC pause, a stalled node): its claim goes stale and B takes over.
    process.kill(a.pid!, 'SIGSTOP');
    cleanup.push(async () => process.kill(a.pid!, 'SIGCONT'));
    await eventually(() => expect(appB.deliveries.map((d) => [d.id, d.attempt])).toEqual([[id, 2]]), { timeoutMs: 15_000 });
    await eventually(async () => expect(await metric(b, 'sluice_queue_tasks_total{queue="late",result="acked"}')).toBe(1));
    process.kill(a.pid!, 'SIGCONT');
    release();
    await eventually(async () => expect(await metric(a, 'sluice_queue_tasks_total{queue="late",result="late"}')).toBe(1));
    expect(await metric(a, 'sluice_queue_tasks_total{queue="late",result="acked"}')).toBe(0);
    expect(await stats(b, 'late')).toMatchObject({ pending: 0 });
  });
});
