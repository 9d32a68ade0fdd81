// TaskQueue against BullMQ on the same redis-server, side by side in one run (`npm run bench:queue`):
//   1. producing in batches of 50 — POST …/tasks:batch to a real sluice-proxy vs Queue.addBulk;
//   2. delivered + acknowledged to a no-op HTTP app at concurrency 100 — batchSize 50 and one task
//      per call — vs a BullMQ Worker (concurrency 100, no-op processor);
//   3. the raw consumer ceiling: the same consumer in-process with delivery replaced by a no-op;
//   4. p99 enqueue→delivery at half of the measured one-task-per-call maximum.
// Prints tables and ratios; never fails on a number.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus } from 'node:os';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { Pool } from 'undici';
import { compilePlan } from '../lib/policy/index.ts';
import { QueueFeature } from '../sidecar/src/queue/index.ts';
import { RedisServer } from '../test/helpers/redis-server.ts';
import { ProcessGroup, sleep, waitUntil } from './lib/processes.ts';
import { percentile, Samples } from './lib/redis-stats.ts';
import { startSidecar, type SidecarHandle } from './lib/sidecar.ts';
import { printAims, printTable } from './lib/table.ts';

const PRODUCE_TASKS = 60_000;
const DELIVER_TASKS = 30_000;
const BATCH = 50;
const IN_FLIGHT_POSTS = 8;
const CONCURRENCY = 100;
const LATENCY_RUN_MS = 5_000;

const group = new ProcessGroup();
const redis = await RedisServer.start();
const r = new Redis(redis.url);
const connection = { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null };

function queueYaml(name: string, batchSize: number, selector: string): string {
  return `apiVersion: sluice.dev/v1alpha1
kind: TaskQueue
metadata: {name: ${name}, namespace: bench}
spec:
  selector: {matchLabels: {app: ${selector}}}
  stream: bench.${name}
  consumerGroup: workers
  delivery: {protocol: http, path: /tasks, timeout: 10s, batchSize: ${batchSize}}
  concurrency: ${CONCURRENCY}
  visibilityTimeout: 60s
`;
}

/** A no-op worker app: answers 200 at once, counts tasks, records enqueue→delivery when asked. */
class NoopApp {
  tasks = 0;
  /** performance.now() of the first request: the runs are timed from the first delivery on. */
  first = 0;
  latency: Samples | undefined;
  sentAt: Samples | undefined;
  readonly server: Server;
  constructor() {
    this.server = createServer((req, res) => {
      if (this.first === 0) this.first = performance.now();
      const n = Number(req.headers['sluice-batch-size'] ?? 1);
      if (this.latency) {
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (c: string) => (body += c));
        req.on('end', () => {
          const now = Date.now();
          const t = (JSON.parse(body) as { t: number }).t;
          this.latency!.push(now - t);
          this.sentAt?.push(t);
          this.tasks += n;
          res.end();
        });
        return;
      }
      req.resume();
      req.on('end', () => {
        this.tasks += n;
        res.end();
      });
    });
  }
  async listen(): Promise<string> {
    await new Promise<void>((res) => this.server.listen(0, '127.0.0.1', res));
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
}

async function pending(stream: string): Promise<number> {
  try {
    return Number(((await r.call('XPENDING', stream, 'workers')) as [number])[0]);
  } catch {
    return -1;
  }
}

// ── 1. producing ─────────────────────────────────────────────────────────────────────────────────

async function produceSluice(sidecar: SidecarHandle, queue: string, total: number): Promise<number> {
  const pool = new Pool(`http://127.0.0.1:${sidecar.localApiPort}`, { connections: IN_FLIGHT_POSTS });
  const body = JSON.stringify({ tasks: Array.from({ length: BATCH }, (_, i) => ({ payload: { order: i, sku: 'A-1', qty: 2 } })) });
  let sent = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT_POSTS }, async () => {
    while (sent < total) {
      sent += BATCH;
      const res = await pool.request({ method: 'POST', path: `/v1/queues/${queue}/tasks:batch`, headers: { 'content-type': 'application/json' }, body });
      if (res.statusCode !== 202) throw new Error(`produce answered ${res.statusCode}: ${await res.body.text()}`);
      await res.body.dump();
    }
  }));
  const rate = total / ((performance.now() - start) / 1000);
  await pool.close();
  return rate;
}

async function produceBull(name: string, total: number, opts: object = {}): Promise<number> {
  const q = new Queue(name, { connection });
  const jobs = Array.from({ length: BATCH }, (_, i) => ({ name: 't', data: { order: i, sku: 'A-1', qty: 2 }, opts }));
  await q.waitUntilReady();
  let sent = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT_POSTS }, async () => {
    while (sent < total) {
      sent += BATCH;
      await q.addBulk(jobs);
    }
  }));
  const rate = total / ((performance.now() - start) / 1000);
  await q.close();
  return rate;
}

// ── 2./3. consuming ──────────────────────────────────────────────────────────────────────────────

async function consumeSluice(batchSize: number): Promise<number> {
  await r.flushall();
  const name = `deliver${batchSize}`;
  const app = new NoopApp();
  const appAddr = await app.listen();
  const producer = await startSidecar(group, `producer-${name}`, { configYaml: queueYaml(name, batchSize, 'worker'), appHttp: appAddr, extraArgs: ['--labels', 'app=producer', '--redis', redis.url] });
  await produceSluice(producer, name, DELIVER_TASKS);
  await group.stop(producer.child);
  const worker = await startSidecar(group, `worker-${name}`, { configYaml: queueYaml(name, batchSize, 'worker'), appHttp: appAddr, extraArgs: ['--labels', 'app=worker', '--redis', redis.url] });
  await waitUntil('all delivered', () => app.tasks >= DELIVER_TASKS, 120_000, 5);
  await waitUntil('all acked', async () => (await pending(`bench.${name}`)) === 0, 30_000, 5);
  const seconds = (performance.now() - app.first) / 1000;
  await group.stop(worker.child);
  app.server.close();
  return DELIVER_TASKS / seconds;
}

async function consumeBull(): Promise<number> {
  await r.flushall();
  await produceBull('bull-deliver', DELIVER_TASKS, { removeOnComplete: true, removeOnFail: true });
  let done = 0;
  let start = 0;
  const w = new Worker('bull-deliver', async () => {
    if (start === 0) start = performance.now();
  }, { connection, concurrency: CONCURRENCY });
  w.on('completed', () => done++);
  await waitUntil('bull all completed', () => done >= DELIVER_TASKS, 180_000, 5);
  const seconds = (performance.now() - start) / 1000;
  await w.close();
  return DELIVER_TASKS / seconds;
}

/** The consumer without the app hop: reads, "delivers" to a no-op, acks — in this process. */
async function consumeRaw(): Promise<number> {
  await r.flushall();
  const yaml = compilePlan([{
    apiVersion: 'sluice.dev/v1alpha1', kind: 'TaskQueue', metadata: { name: 'raw', namespace: 'bench' },
    spec: { selector: {}, stream: 'bench.raw', consumerGroup: 'workers', delivery: { protocol: 'http', path: '/', batchSize: BATCH }, concurrency: 1_000, visibilityTimeout: '60s' },
  }]);
  const producer = await startSidecar(group, 'producer-raw', { configYaml: queueYaml('raw', 1, 'nobody'), appHttp: '127.0.0.1:1', extraArgs: ['--labels', 'app=producer', '--redis', redis.url] });
  await produceSluice(producer, 'raw', DELIVER_TASKS * 2);
  await group.stop(producer.child);
  let delivered = 0;
  let start = 0;
  const feature = new QueueFeature({
    redisUrl: redis.url, consumerName: 'raw', registry: new Registry(),
    deliverer: () => ({ deliver: async (tasks) => { if (start === 0) start = performance.now(); delivered += tasks.length; return tasks.map(() => ({ ok: true as const, status: 200 })); }, close: async () => {} }),
  });
  await feature.ready();
  feature.applyPlan(yaml);
  await waitUntil('raw all delivered', () => delivered >= DELIVER_TASKS * 2, 120_000, 5);
  await waitUntil('raw all acked', async () => (await pending('bench.raw')) === 0, 30_000, 5);
  const seconds = (performance.now() - start) / 1000;
  await feature.close();
  return (DELIVER_TASKS * 2) / seconds;
}

// ── 4. latency at half the maximum rate ──────────────────────────────────────────────────────────

async function latencyAt(rate: number, perSecond = false): Promise<{ p50: number; p99: number; max: number; n: number; achieved: number }> {
  await r.flushall();
  const app = new NoopApp();
  app.latency = new Samples();
  app.sentAt = new Samples();
  const appAddr = await app.listen();
  const yaml = queueYaml('latency', 1, 'worker');
  const worker = await startSidecar(group, 'worker-latency', { configYaml: yaml, appHttp: appAddr, extraArgs: ['--labels', 'app=worker', '--redis', redis.url] });
  const producer = await startSidecar(group, 'producer-latency', { configYaml: yaml, appHttp: appAddr, extraArgs: ['--labels', 'app=producer', '--redis', redis.url] });
  const pool = new Pool(`http://127.0.0.1:${producer.localApiPort}`, { connections: 16 });
  // Every 5 ms a batch sized for the target rate; each task carries the wall time it was sent at.
  const tickMs = 5;
  let owed = 0;
  let sent = 0;
  const start = performance.now();
  const posts: Promise<void>[] = [];
  while (performance.now() - start < LATENCY_RUN_MS) {
    owed += (rate * tickMs) / 1000;
    const n = Math.floor(owed);
    owed -= n;
    if (n > 0) {
      const t = Date.now();
      const body = JSON.stringify({ tasks: Array.from({ length: n }, () => ({ payload: { t } })) });
      sent += n;
      posts.push(pool.request({ method: 'POST', path: '/v1/queues/latency/tasks:batch', headers: { 'content-type': 'application/json' }, body }).then((res) => res.body.dump()));
    }
    await sleep(tickMs);
  }
  await Promise.all(posts);
  const achieved = sent / ((performance.now() - start) / 1000);
  await waitUntil('latency all delivered', () => app.tasks >= sent, 60_000, 5);
  await pool.close();
  await Promise.all([group.stop(worker.child), group.stop(producer.child)]);
  app.server.close();
  // The first half-second warms the JIT and the connections; the steady state is what is reported.
  const samples = app.latency.values().slice(Math.floor(rate / 2));
  if (perSecond) {
    const sent = app.sentAt!.values();
    const all = app.latency.values();
    const t0 = sent[0] ?? 0;
    for (let s = 0; s * 1000 < LATENCY_RUN_MS; s++) {
      const window = all.filter((_, i) => (sent[i] ?? 0) - t0 >= s * 1000 && (sent[i] ?? 0) - t0 < (s + 1) * 1000);
      console.log(`second ${s}: n=${window.length} p50=${percentile(window, 50)} p99=${percentile(window, 99)} max=${percentile(window, 100)}`);
    }
  }
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), max: percentile(samples, 100), n: samples.length, achieved };
}

const onlyLatency = Number(process.env.BENCH_QUEUE_LATENCY_RATE ?? 0);
if (onlyLatency > 0) {
  // Diagnostic mode: only the latency run, at a given rate, with the p99 of every second.
  try {
    const lat = await latencyAt(onlyLatency, true);
    console.log(lat);
  } finally {
    r.disconnect();
    await group.stopAll();
    await redis.stop();
  }
  process.exit(0);
}

try {
  console.log(`TaskQueue vs BullMQ ${(await import('bullmq/package.json', { with: { type: 'json' } }).catch(() => ({ default: { version: '5' } }))).default.version} — ${cpus().length} cores, ${cpus()[0]?.model ?? ''}, redis-server on 127.0.0.1:${redis.port}`);

  await r.flushall();
  const producer = await startSidecar(group, 'producer', { configYaml: queueYaml('produce', 1, 'nobody'), appHttp: '127.0.0.1:1', extraArgs: ['--labels', 'app=producer', '--redis', redis.url] });
  await produceSluice(producer, 'produce', 5_000); // warm-up
  await r.flushall();
  const sluiceProduce = await produceSluice(producer, 'produce', PRODUCE_TASKS);
  await group.stop(producer.child);
  await r.flushall();
  await produceBull('bull-warm', 5_000);
  await r.flushall();
  const bullProduce = await produceBull('bull-produce', PRODUCE_TASKS);
  printTable(`1. Producing ${PRODUCE_TASKS} tasks in batches of ${BATCH}, ${IN_FLIGHT_POSTS} batches in flight`, ['contender', 'tasks/s'], [
    ['sluice POST /v1/queues/{name}/tasks:batch (sluice-proxy)', sluiceProduce],
    ['BullMQ Queue.addBulk', bullProduce],
  ]);

  const bullConsume = await consumeBull();
  const sluiceBatch = await consumeSluice(BATCH);
  const sluiceSingle = await consumeSluice(1);
  const raw = await consumeRaw();
  printTable(`2./3. Delivered and acknowledged, ${DELIVER_TASKS} tasks (raw: ${DELIVER_TASKS * 2}), concurrency ${CONCURRENCY}, no-op app`, ['contender', 'tasks/s'], [
    ['BullMQ Worker, concurrency 100 (removeOnComplete)', bullConsume],
    [`sluice-proxy → HTTP app, batchSize ${BATCH}`, sluiceBatch],
    ['sluice-proxy → HTTP app, 1 task per call', sluiceSingle],
    ['sluice consumer, no app hop (raw ceiling, concurrency 1000)', raw],
  ]);

  const half = sluiceSingle / 2;
  const lat = await latencyAt(half);
  printTable(`4. Enqueue→delivery at half the 1-task-per-call maximum (${Math.round(half)}/s target), producer sidecar → Redis → worker sidecar → app`, ['achieved/s', 'samples', 'p50 ms', 'p99 ms', 'max ms'], [
    [lat.achieved, lat.n, lat.p50, lat.p99, lat.max],
  ]);

  printAims('Aims', [
    { name: 'produce, batches of 50: sluice / BullMQ addBulk', value: sluiceProduce / bullProduce, kind: 'atLeast', target: 3 },
    { name: 'deliver+ack, batchSize 50: sluice / BullMQ worker', value: sluiceBatch / bullConsume, kind: 'atLeast', target: 3 },
    { name: 'deliver+ack, 1 per call: sluice / BullMQ worker', value: sluiceSingle / bullConsume, kind: 'atLeast', target: 0.5 },
    { name: 'p99 enqueue→delivery at half max rate (ms)', value: lat.p99, kind: 'atMost', target: 10, format: (v) => v.toFixed(1) },
  ]);
} finally {
  r.disconnect();
  await group.stopAll();
  await redis.stop();
}
