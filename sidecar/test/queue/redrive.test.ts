import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { useCleanup, useRedisServer } from '../../../test/helpers/fixtures.ts';
import type { RedisServer } from '../../../test/helpers/redis-server.ts';
import { taskQueueDoc, testQueueKeys } from './helpers/queue-harness.ts';
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
  // Its local API answers before Redis is connected, and an enqueue then (rightly) gets 503.
  await eventually(async () => expect((await fetch(`${p.admin}/readyz`)).status).toBe(200), { timeoutMs: 20_000 });
  return p;
}

async function app(): Promise<WorkerApp> {
  const a = await WorkerApp.start();
  cleanup.push(() => a.close());
  return a;
}

function client(): Redis {
  const c = new Redis(redis.url);
  cleanup.push(() => c.disconnect());
  return c;
}

interface Progress { id: string; state: string; moved: number; skipped: number; owner: string }

async function redrive(p: ProxyProcess, queue: string, body: unknown): Promise<{ status: number; json: Progress & { code?: string; redrive?: Progress } }> {
  const res = await fetch(`${p.localApi}/v1/queues/${queue}/dead-letters:redrive`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Progress & { code?: string } };
}

async function progress(p: ProxyProcess, queue: string): Promise<Progress> {
  const res = await fetch(`${p.localApi}/v1/queues/${queue}/dead-letters:redrive`);
  expect(res.status).toBe(200);
  return (await res.json()) as Progress;
}

async function stats(p: ProxyProcess, queue: string): Promise<{ pending: number; lag: number; deadLetters: number }> {
  return (await (await fetch(`${p.localApi}/v1/queues/${queue}`)).json()) as { pending: number; lag: number; deadLetters: number };
}

/** Posts `n` tasks in one batch and returns their ids. */
async function produce(p: ProxyProcess, queue: string, payloads: unknown[]): Promise<string[]> {
  const res = await fetch(`${p.localApi}/v1/queues/${queue}/tasks:batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks: payloads.map((payload) => ({ payload })) }) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { tasks: { id: string }[] }).tasks.map((t) => t.id);
}

/** How many entries of the task stream carry each task id: a redriven task is appended once. */
async function appendsPerTask(c: Redis, queue: string): Promise<Map<string, number>> {
  const entries = (await c.xrange(testQueueKeys(queue).stream, '-', '+')) as [string, string[]][];
  const out = new Map<string, number>();
  for (const [entryId, fields] of entries) {
    const at = fields.indexOf('i');
    const id = at >= 0 && at % 2 === 0 ? (fields[at + 1] as string) : entryId;
    out.set(id, (out.get(id) ?? 0) + 1);
  }
  return out;
}

const oneAttempt = { retry: { maxAttempts: 1, backoff: { initial: '50ms', max: '50ms', multiplier: 1 } } };

describe('dead-letter redrive (real sluice-proxy processes)', () => {
  it('after the worker heals every dead letter is delivered once more, and a second redrive changes nothing', { timeout: 90_000 }, async () => {
    // 422 dead-letters at once (permanent); the redriven tasks keep the default three attempts.
    const config = writeConfig([taskQueueDoc('heal')]);
    const a = await app();
    a.behaviour = () => 422;
    const w = await worker('heal-a', config, a);
    const ids = await produce(w, 'heal', Array.from({ length: 30 }, (_, n) => ({ n })));
    await eventually(async () => expect((await stats(w, 'heal')).deadLetters).toBe(30), { timeoutMs: 20_000 });
    const failedDeliveries = a.deliveries.length;
    a.behaviour = () => 200;

    const first = await redrive(w, 'heal', { perSecond: 200 });
    expect(first.status).toBe(202);
    expect(first.json.state).toBe('running');
    await eventually(async () => expect(await progress(w, 'heal')).toMatchObject({ id: first.json.id, state: 'done', moved: 30 }), { timeoutMs: 20_000 });
    // A fresh attempt budget: the redriven task is attempt 1 again, and keeps its id.
    const firstAttempts = () => a.deliveries.slice(failedDeliveries).filter((d) => d.attempt === 1);
    await eventually(() => expect(firstAttempts()).toHaveLength(30), { timeoutMs: 20_000 });
    expect(firstAttempts().map((d) => d.id).sort()).toEqual([...ids].sort());
    await eventually(async () => expect(await stats(w, 'heal')).toMatchObject({ pending: 0, lag: 0, deadLetters: 0 }), { timeoutMs: 20_000 });
    const delivered = a.deliveries.length;

    const second = await redrive(w, 'heal', { perSecond: 200 });
    expect(second.status).toBe(202);
    expect(second.json).toMatchObject({ state: 'done', moved: 0 });
    await sleep(1_500);
    expect(a.deliveries.length).toBe(delivered);
    for (const n of (await appendsPerTask(client(), 'heal')).values()) expect(n).toBe(2);
  });

  it('a filter by error moves only the matching dead letters; the others stay', { timeout: 90_000 }, async () => {
    const config = writeConfig([taskQueueDoc('filter', oneAttempt)]);
    const a = await app();
    a.behaviour = (d) => (JSON.parse(d.body) as { n: number }).n % 2 === 0 ? 500 : 422;
    const w = await worker('filter-a', config, a);
    await produce(w, 'filter', Array.from({ length: 20 }, (_, n) => ({ n })));
    await eventually(async () => expect((await stats(w, 'filter')).deadLetters).toBe(20), { timeoutMs: 20_000 });
    a.behaviour = () => 200;
    const before = a.deliveries.length;
    expect((await redrive(w, 'filter', { error: 'http 5' })).status).toBe(202);
    await eventually(async () => expect(await progress(w, 'filter')).toMatchObject({ state: 'done', moved: 10, skipped: 10 }), { timeoutMs: 20_000 });
    await eventually(() => expect(a.deliveries.length - before).toBe(10), { timeoutMs: 20_000 });
    for (const d of a.deliveries.slice(before)) expect((JSON.parse(d.body) as { n: number }).n % 2).toBe(0);
    expect((await stats(w, 'filter')).deadLetters).toBe(10);
  });

  it('is paced to perSecond, refuses a second start while running, and refuses bad requests', { timeout: 90_000 }, async () => {
    const config = writeConfig([taskQueueDoc('paced', oneAttempt)]);
    const a = await app();
    a.behaviour = () => 500;
    const w = await worker('paced-a', config, a);
    await produce(w, 'paced', Array.from({ length: 40 }, (_, n) => ({ n })));
    await eventually(async () => expect((await stats(w, 'paced')).deadLetters).toBe(40), { timeoutMs: 20_000 });
    a.behaviour = () => 200;
    for (const bad of [{ perSecond: 0 }, { max: -1 }, { cause: 'bored' }, { filter: 'x' }, [1]]) {
      const r = await redrive(w, 'paced', bad);
      expect(r.status).toBe(400);
      expect(r.json.code).toBe('SLUICE_ERR_QUEUE_BAD_TASK');
    }
    const started = Date.now();
    expect((await redrive(w, 'paced', { perSecond: 10 })).status).toBe(202);
    const again = await redrive(w, 'paced', { perSecond: 1000 });
    expect(again.status).toBe(409);
    expect(again.json.code).toBe('SLUICE_ERR_QUEUE_REDRIVE_RUNNING');
    // Never ahead of the pace (one step of slack); a loaded machine can only make it slower.
    for (;;) {
      const p = await progress(w, 'paced');
      expect(p.moved).toBeLessThanOrEqual(10 * ((Date.now() - started) / 1000) + 2);
      if (p.state === 'done') break;
      expect(Date.now() - started).toBeLessThan(60_000);
      await sleep(200);
    }
    expect((await progress(w, 'paced')).moved).toBe(40);
  });

  it('a sidecar killed with -9 mid-redrive is taken over by another worker; no dead letter is moved twice', { timeout: 120_000 }, async () => {
    const config = writeConfig([taskQueueDoc('resume', oneAttempt)]);
    const a = await app();
    a.behaviour = () => 500;
    const first = await worker('resume-a', config, a);
    const ids = await produce(first, 'resume', Array.from({ length: 60 }, (_, n) => ({ n })));
    await eventually(async () => expect((await stats(first, 'resume')).deadLetters).toBe(60), { timeoutMs: 30_000 });
    a.behaviour = () => 200;
    const second = await worker('resume-b', config, a);
    expect((await redrive(first, 'resume', { perSecond: 10 })).status).toBe(202);
    await eventually(async () => expect(await progress(first, 'resume')).toMatchObject({ owner: 'resume-a' }), { timeoutMs: 20_000 });
    await eventually(async () => expect((await progress(first, 'resume')).moved).toBeGreaterThanOrEqual(5), { timeoutMs: 20_000 });
    await first.kill9();
    const atKill = await progress(second, 'resume');
    expect(atKill.state).toBe('running');
    expect(atKill.moved).toBeLessThan(60);
    await eventually(async () => expect(await progress(second, 'resume')).toMatchObject({ state: 'done', moved: 60 }), { timeoutMs: 60_000 });
    await eventually(async () => expect(await stats(second, 'resume')).toMatchObject({ pending: 0, lag: 0, deadLetters: 0 }), { timeoutMs: 30_000 });
    // Every dead letter appended back exactly once (its first entry plus one redrive) …
    const appends = await appendsPerTask(client(), 'resume');
    expect([...appends.keys()].sort()).toEqual([...ids].sort());
    for (const n of appends.values()) expect(n).toBe(2);
    // … and delivered: all of them after the heal.
    const healed = new Set(a.deliveries.filter((d) => d.attempt >= 1).map((d) => d.id));
    for (const id of ids) expect(healed.has(id)).toBe(true);
  });
});
