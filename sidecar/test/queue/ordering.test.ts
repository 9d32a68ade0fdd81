import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { useCleanup, useRedisServer } from '../../../test/helpers/fixtures.ts';
import type { RedisServer } from '../../../test/helpers/redis-server.ts';
import { QueueHarness, taskQueueDoc, testQueueKeys } from './helpers/queue-harness.ts';
import { ProxyProcess, writeConfig } from './helpers/proxy-process.ts';
import { WorkerApp, type Delivery } from './helpers/worker-app.ts';

let redis: RedisServer;
let r: Redis;
useRedisServer((server) => {
  redis = server;
  r = new Redis(server.url);
  return () => r.disconnect();
});
const cleanup = useCleanup();

interface Item { k: string; n: number }
const item = (d: Delivery) => JSON.parse(d.body) as Item;

/** Per key, the task numbers in the order the app received them. */
function lines(deliveries: readonly Delivery[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const d of deliveries) {
    const { k, n } = item(d);
    const list = out.get(k) ?? [];
    list.push(n);
    out.set(k, list);
  }
  return out;
}

async function harness(name: string, spec: Record<string, unknown>, app: WorkerApp): Promise<QueueHarness> {
  const h = await QueueHarness.start({ redisUrl: redis.url, docs: [taskQueueDoc(name, spec)], appHttp: app.address });
  cleanup.push(() => h.close());
  return h;
}

async function started(behaviour?: (d: Delivery) => number | Promise<number>): Promise<WorkerApp> {
  const a = await WorkerApp.start(behaviour);
  cleanup.push(() => a.close());
  return a;
}

describe('ordering keys', () => {
  it('a failing task holds its key (head-of-line) through its backoff; tasks without a key and other keys pass', async () => {
    const failedOnce = new Set<string>();
    const app = await started((d) => {
      const { k, n } = item(d);
      if (k === 'A' && n === 1 && !failedOnce.has(d.id)) {
        failedOnce.add(d.id);
        return 500;
      }
      return 200;
    });
    const h = await harness('hol', { concurrency: 16, retry: { maxAttempts: 3, backoff: { initial: '800ms', max: '800ms', multiplier: 1 } } }, app);
    const { json } = await h.postBatch('hol', [0, 1, 2, 3].map((n) => ({ payload: { k: 'A', n }, orderingKey: 'A' })));
    expect(json.tasks).toHaveLength(4);
    await eventually(() => expect(failedOnce.size).toBe(1));
    // While A's task 1 waits out its backoff: B's tasks and a task without a key are delivered.
    await h.postBatch('hol', [{ payload: { k: 'B', n: 0 }, orderingKey: 'B' }, { payload: { k: 'B', n: 1 }, orderingKey: 'B' }, { payload: { k: '-', n: 0 } }]);
    await eventually(() => expect(lines(app.deliveries).get('B')).toEqual([0, 1]));
    await eventually(() => expect(lines(app.deliveries).get('-')).toEqual([0]));
    expect(lines(app.deliveries).get('A')).toEqual([0, 1]);
    await eventually(() => expect(lines(app.deliveries).get('A')).toEqual([0, 1, 1, 2, 3]), { timeoutMs: 10_000 });
    await eventually(async () => expect(await r.hlen(testQueueKeys('hol').orderActive)).toBe(0));
    expect(await r.zcard(testQueueKeys('hol').orderWaiting)).toBe(0);
  });

  it('a dead-lettered task lets its key go on; a redriven one goes to the end of its key’s line', async () => {
    const app = await started((d) => (item(d).n === 1 && d.attempt === 1 && item(d).k === 'A' ? 422 : 200));
    const h = await harness('ord-dead', { retry: { maxAttempts: 1, backoff: { initial: '50ms', max: '50ms', multiplier: 1 } } }, app);
    await h.postBatch('ord-dead', [0, 1, 2].map((n) => ({ payload: { k: 'A', n }, orderingKey: 'A' })));
    await eventually(() => expect(lines(app.deliveries).get('A')).toEqual([0, 1, 2]));
    await eventually(async () => expect((await h.feature.stats(h.feature.resolve('ord-dead'))).deadLetters).toBe(1));
    await h.postBatch('ord-dead', [3].map((n) => ({ payload: { k: 'A', n }, orderingKey: 'A' })));
    await eventually(() => expect(lines(app.deliveries).get('A')).toEqual([0, 1, 2, 3]));
    const res = await fetch(`${h.api}/v1/queues/ord-dead/dead-letters:redrive`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(202);
    await eventually(() => expect(lines(app.deliveries).get('A')).toEqual([0, 1, 2, 3, 1]), { timeoutMs: 10_000 });
    const last = app.deliveries.at(-1)!;
    expect(last.attempt).toBe(1);
  });

  it('batchSize > 1: a batch never holds two tasks of one key, and each key stays in order', async () => {
    const app = await started(() => sleep(5).then(() => 200));
    const h = await harness('ord-batch', { concurrency: 40, delivery: { protocol: 'http', path: '/tasks', timeout: '5s', batchSize: 10 } }, app);
    for (let n = 0; n < 5; n++) await h.postBatch('ord-batch', Array.from({ length: 20 }, (_, k) => ({ payload: { k: `k${k}`, n }, orderingKey: `k${k}` })));
    await eventually(() => expect(app.deliveries).toHaveLength(100), { timeoutMs: 15_000 });
    for (const list of lines(app.deliveries).values()) expect(list).toEqual([0, 1, 2, 3, 4]);
    const batches = new Map<number, string[]>();
    for (const d of app.deliveries) if (d.batchSize > 1) batches.set(d.at, [...(batches.get(d.at) ?? []), item(d).k]);
    for (const keys of batches.values()) expect(new Set(keys).size).toBe(keys.length);
  });

  it('the tasks waiting behind their key are counted as waiting (not as lag) until the head is acknowledged', async () => {
    let release!: () => void;
    const held = new Promise<number>((res) => (release = () => res(200)));
    const app = await started((d) => (item(d).n === 0 ? held : 200));
    const h = await harness('ord-wait', {}, app);
    await h.postBatch('ord-wait', [0, 1, 2, 3, 4].map((n) => ({ payload: { k: 'A', n }, orderingKey: 'A' })));
    await eventually(async () => expect(await h.feature.stats(h.feature.resolve('ord-wait'))).toMatchObject({ waiting: 4, lag: 0, pending: 1 }));
    await eventually(() => expect(lines(app.deliveries).get('A')).toEqual([0]));
    expect(await h.feature.stats(h.feature.resolve('ord-wait'))).toMatchObject({ waiting: 4 });
    release();
    await eventually(() => expect(lines(app.deliveries).get('A')).toEqual([0, 1, 2, 3, 4]));
    await eventually(async () => expect(await h.feature.stats(h.feature.resolve('ord-wait'))).toMatchObject({ waiting: 0, pending: 0 }));
  });

  it('refuses an ordering key that is not printable ASCII or too long', async () => {
    const app = await started();
    const h = await harness('ord-bad', {}, app);
    const bad = await h.postBatch('ord-bad', [{ payload: 1, orderingKey: 'a\u0000b' }]);
    expect(bad.status).toBe(400);
    expect(bad.json.code).toBe('SLUICE_ERR_QUEUE_BAD_TASK');
    expect((await h.post('ord-bad', 1, { 'sluice-ordering-key': 'x'.repeat(300) })).status).toBe(400);
    expect((await h.post('ord-bad', 1, { 'sluice-ordering-key': 'ok' })).status).toBe(202);
    await eventually(() => expect(app.deliveries).toHaveLength(1));
  });
});

// The machine these tests run on is shared and loaded: SLUICE_ORDERING_KEYS / _TASKS scale it down.
const KEYS = Number(process.env.SLUICE_ORDERING_KEYS ?? 1_000);
const PER_KEY = Number(process.env.SLUICE_ORDERING_TASKS ?? 20);

describe('ordering keys across three worker sidecars (real processes) with kill -9', () => {
  it(`${KEYS} keys × ${PER_KEY} tasks: per-key order kept, nothing lost`, { timeout: 600_000 }, async () => {
    const config = writeConfig([taskQueueDoc('ordered', { concurrency: 64, visibilityTimeout: '2s', retry: { maxAttempts: 20, backoff: { initial: '50ms', max: '200ms', multiplier: 2 } } })]);
    let calls = 0;
    // One app shared by the three workers (what matters is the order the app sees), failing now and then.
    const app = await started(() => (++calls % 50 === 0 ? 500 : 200));
    const workers: ProxyProcess[] = [];
    const start = async (i: number) => {
      const p = await ProxyProcess.start({ id: `ordered-${i}`, config, redisUrl: redis.url, appHttp: app.address });
      workers[i] = p;
      cleanup.push(() => p.kill9());
    };
    for (let i = 0; i < 3; i++) await start(i);
    for (let n = 0; n < PER_KEY; n++) {
      for (let from = 0; from < KEYS; from += 1_000) {
        const tasks = Array.from({ length: Math.min(1_000, KEYS - from) }, (_, j) => ({ payload: { k: `key-${from + j}`, n }, orderingKey: `key-${from + j}` }));
        const res = await fetch(`${workers[n % 3]!.localApi}/v1/queues/ordered/tasks:batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks }) });
        expect(res.status).toBe(202);
      }
    }
    const total = KEYS * PER_KEY;
    const distinct = () => new Set(app.deliveries.map((d) => d.body)).size;
    // Random kill -9 while the tasks flow; each victim comes back under its own name.
    let kills = 0;
    while (kills < 2 || (kills < 4 && distinct() < total * 0.9)) {
      await sleep(500 + Math.floor(Math.random() * 1_000));
      const i = Math.floor(Math.random() * 3);
      await workers[i]!.kill9();
      kills++;
      await start(i);
    }
    await eventually(() => expect(distinct()).toBe(total), { timeoutMs: 300_000, intervalMs: 500 });
    await eventually(async () => {
      const s = (await (await fetch(`${workers[0]!.localApi}/v1/queues/ordered`)).json()) as { pending: number; lag: number; deadLetters: number };
      expect(s).toMatchObject({ pending: 0, lag: 0, deadLetters: 0 });
    }, { timeoutMs: 60_000 });
    const byKey = lines(app.deliveries);
    expect(byKey.size).toBe(KEYS);
    for (const [k, list] of byKey) {
      // At least once: a task may come again (its worker died before the ack), but never after a later one.
      for (let i = 1; i < list.length; i++) expect(list[i]! >= list[i - 1]!, `${k}: ${list.join(',')}`).toBe(true);
      expect(new Set(list).size, k).toBe(PER_KEY);
    }
    expect(await r.hlen(testQueueKeys('ordered').orderActive)).toBe(0);
    expect(await r.zcard(testQueueKeys('ordered').orderWaiting)).toBe(0);
    expect(kills).toBeGreaterThanOrEqual(2);
  });
});
