// TaskQueue against BullMQ on the same redis-server, side by side in one run (`npm run bench:queue`):
//   1. producing in batches of 50 — POST …/tasks:batch to a real sluice-proxy vs Queue.addBulk;
//   2. delivered + acknowledged to a no-op HTTP app at concurrency 100 — batchSize 50 and one task
//      per call — vs a BullMQ Worker (concurrency 100, no-op processor);
//   3. the raw consumer ceiling: the same consumer in-process with delivery replaced by a no-op;
//   4. p99 enqueue→delivery at half of the measured one-task-per-call maximum;
//   5. ordering keys: tasks over ORDER_KEYS keys against the same tasks without keys (produce and
//      drain, the consumer in-process with a no-op delivery), and dead-letter redrive throughput.
//   6. asynq (Go, bench/peers/asynq, GOMAXPROCS=1) beside both: produce and deliver+ack with CPU
//      per task of every process that does the work (BENCH_QUEUE_PEERS_ONLY=1 runs this part alone).
// Producing and deliveries are measured warm (WARM_TASKS first, for both contenders); the latency run discards
// its first LATENCY_WARM_MS. Prints tables and ratios; never fails on a number.
// Diagnostics: BENCH_QUEUE_PROF=<dir> (CPU profiles of every sidecar), BENCH_QUEUE_PRODUCE_ONLY=1,
// BENCH_QUEUE_DELIVER_ONLY=<batchSize> (with CPU µs per task), BENCH_QUEUE_LATENCY_RATE=<n>,
// BENCH_QUEUE_PRODUCE_TASKS, BENCH_QUEUE_DELIVER_TASKS, BENCH_QUEUE_WARM, BENCH_QUEUE_ROUNDS,
// BENCH_QUEUE_ORDERED_ONLY=1 (part 5 alone), BENCH_QUEUE_ORDER_TASKS, BENCH_QUEUE_REDRIVE_TASKS,
// BENCH_SIDECAR_NODE_OPTIONS (V8 flags for the sidecars, e.g. the injector's heap settings).
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { Pool } from 'undici';
import { compilePlan } from '../lib/policy/index.ts';
import { QueueFeature } from '../sidecar/src/queue/index.ts';
import { RedisServer } from '../test/helpers/redis-server.ts';
import { ProcessGroup, sleep, waitUntil } from './lib/processes.ts';
import { percentile, Samples } from './lib/redis-stats.ts';
import { startSidecar as startSidecarProcess, type SidecarHandle, type SidecarStartOptions } from './lib/sidecar.ts';
import { median, printAims, printTable } from './lib/table.ts';
import { queueKeys } from '../lib/redis/key-layout.ts';
import { peer, type PeerLoadResult } from './lib/peers.ts';
import { execFile } from 'node:child_process';

const PRODUCE_TASKS = Number(process.env.BENCH_QUEUE_PRODUCE_TASKS ?? 100_000);
/** Rounds of the produce and batchSize-50 comparisons; ratios are the median round's. */
const ROUNDS = Number(process.env.BENCH_QUEUE_ROUNDS ?? 3);
const DELIVER_TASKS = Number(process.env.BENCH_QUEUE_DELIVER_TASKS ?? 30_000);
const BATCH = 50;
const IN_FLIGHT_POSTS = 8;
const CONCURRENCY = 100;
const LATENCY_RUN_MS = 5_000;
/** Load before the latency samples that count: fresh sidecars spend their first seconds compiling. */
const LATENCY_WARM_MS = 2_000;
/** `BENCH_QUEUE_PROF=<dir>`: every sidecar the bench starts writes a V8 CPU profile there (see bench/lib/cpuprofile-top.ts). */
const PROF_DIR = process.env.BENCH_QUEUE_PROF;
/** `BENCH_SIDECAR_NODE_OPTIONS='--max-semi-space-size=2'`: V8 flags for every sidecar, as the injector sets them. */
const nodeArgs = [...(PROF_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROF_DIR] : []), ...(process.env.BENCH_SIDECAR_NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean)];

async function startSidecar(g: ProcessGroup, name: string, opts: SidecarStartOptions): Promise<SidecarHandle> {
  const h = await startSidecarProcess(g, name, opts);
  if (PROF_DIR) console.log(`(profiling) ${name}: pid ${h.pid}`);
  return h;
}

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
  onFirst: (() => void) | undefined;
  readonly server: Server;
  constructor() {
    this.server = createServer((req, res) => {
      if (this.first === 0) {
        this.first = performance.now();
        this.onFirst?.();
      }
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

/** CPU seconds of one process (user + system), or 0 when it is gone. */
function procCpu(pid: number | undefined, systemOnly = false): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((systemOnly ? 0 : Number(fields[11])) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** The diagnostic modes print CPU µs per task of the sidecar under test and of redis-server. */
const cpuNote: string[] = [];

async function pending(stream: string): Promise<number> {
  try {
    return Number(((await r.call('XPENDING', queueKeys({ namespace: 'bench', stream }).stream, 'workers')) as [number])[0]);
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

/**
 * Both contenders are measured warm: a sidecar lives for days, and the first second of a fresh
 * process is mostly JIT compilation (a cold worker sidecar spent ~20 µs CPU per task on a
 * 30 000-task run, ~13 µs on a 150 000-task one). The worker sidecar first consumes WARM_TASKS of
 * a warm-up queue; the measured queue's backlog is produced meanwhile under a selector that does
 * not match the worker, then the config file is rewritten to select it (standalone mode reloads
 * it) and the timing starts with its first delivery. BullMQ gets the same: a Worker in this
 * process consumes WARM_TASKS of a warm-up queue before the measured Worker starts.
 */
const WARM_TASKS = Number(process.env.BENCH_QUEUE_WARM ?? 30_000);

async function consumeSluice(batchSize: number, onFirstDelivery?: () => void): Promise<number> {
  await r.flushall();
  const name = `deliver${batchSize}`;
  const warm = `warm${batchSize}`;
  const config = (mainSelector: string) => `${queueYaml(warm, batchSize, 'worker')}---\n${queueYaml(name, batchSize, mainSelector)}`;
  const app = new NoopApp();
  const appAddr = await app.listen();
  const worker = await startSidecar(group, `worker-${name}`, { configYaml: config('nobody'), appHttp: appAddr, nodeArgs, extraArgs: ['--labels', 'app=worker', '--redis', redis.url] });
  const producer = await startSidecar(group, `producer-${name}`, { configYaml: config('nobody'), appHttp: appAddr, nodeArgs, extraArgs: ['--labels', 'app=producer', '--redis', redis.url] });
  await produceSluice(producer, warm, WARM_TASKS);
  await waitUntil('warm-up delivered', () => app.tasks >= WARM_TASKS, 120_000, 5);
  await waitUntil('warm-up acked', async () => (await pending(`bench.${warm}`)) === 0, 30_000, 5);
  await produceSluice(producer, name, DELIVER_TASKS);
  await group.stop(producer.child);
  app.tasks = 0;
  app.first = 0;
  let cpu0 = [0, 0, 0];
  app.onFirst = () => {
    cpu0 = [procCpu(worker.pid), procCpu(worker.pid, true), procCpu(redis.pid)];
    onFirstDelivery?.();
  };
  writeFileSync(join(worker.dir, 'sluice.yaml'), config('worker'));
  await waitUntil('all delivered', () => app.tasks >= DELIVER_TASKS, 120_000, 5);
  await waitUntil('all acked', async () => (await pending(`bench.${name}`)) === 0, 30_000, 5);
  const seconds = (performance.now() - app.first) / 1000;
  const perTask = (cpu: number, at0: number | undefined) => (((cpu - (at0 ?? 0)) * 1e6) / DELIVER_TASKS).toFixed(1);
  cpuNote.push(`deliver batchSize ${batchSize}: worker sidecar ${perTask(procCpu(worker.pid), cpu0[0])} µs CPU/task (${perTask(procCpu(worker.pid, true), cpu0[1])} in the kernel), redis-server ${perTask(procCpu(redis.pid), cpu0[2])} µs/task`);
  await group.stop(worker.child);
  worker.cleanup();
  app.server.close();
  return DELIVER_TASKS / seconds;
}

async function bullWorkerRun(queue: string, tasks: number): Promise<number> {
  await produceBull(queue, tasks, { removeOnComplete: true, removeOnFail: true });
  let done = 0;
  let start = 0;
  const w = new Worker(queue, async () => {
    if (start === 0) start = performance.now();
  }, { connection, concurrency: CONCURRENCY });
  w.on('completed', () => done++);
  await waitUntil('bull all completed', () => done >= tasks, 180_000, 5);
  const seconds = (performance.now() - start) / 1000;
  await w.close();
  return tasks / seconds;
}

async function consumeBull(): Promise<number> {
  await r.flushall();
  await bullWorkerRun('bull-warm-deliver', WARM_TASKS);
  await r.flushall();
  return bullWorkerRun('bull-deliver', DELIVER_TASKS);
}

/** The consumer without the app hop: reads, "delivers" to a no-op, acks — in this process. */
async function consumeRaw(): Promise<number> {
  await r.flushall();
  const yaml = compilePlan([{
    apiVersion: 'sluice.dev/v1alpha1', kind: 'TaskQueue', metadata: { name: 'raw', namespace: 'bench' },
    spec: { selector: {}, stream: 'bench.raw', consumerGroup: 'workers', delivery: { protocol: 'http', path: '/', batchSize: BATCH }, concurrency: 1_000, visibilityTimeout: '60s' },
  }]);
  const producer = await startSidecar(group, 'producer-raw', { configYaml: queueYaml('raw', 1, 'nobody'), appHttp: '127.0.0.1:1', nodeArgs, extraArgs: ['--labels', 'app=producer', '--redis', redis.url] });
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

// ── 6. asynq, with CPU per task ──────────────────────────────────────────────────────────────────

/**
 * Whose CPU counts, per task: for Sluice every process on its path — the producing app's HTTP
 * client (this process), the sidecar(s) and redis-server; on delivery the worker sidecar, the
 * no-op app it calls over HTTP (this process) and redis-server. For asynq, the one Go process (the
 * library is the app: no hop) and redis-server. BullMQ, like asynq, runs in the app's process.
 */
interface CpuRun { rate: number; cpuUs: Record<string, number> }

function runAsynq(args: string[]): Promise<PeerLoadResult> {
  return new Promise((resolve, reject) => {
    execFile(asynqPeer!.bin, args, { env: { ...process.env, GOMAXPROCS: '1' }, timeout: 600_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`asynq ${args.join(' ')}: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as PeerLoadResult);
    });
  });
}
const asynqPeer = peer('asynq');
const ASYNQ_CONCURRENCY = CONCURRENCY;

async function asynqProduce(tasks: number): Promise<CpuRun> {
  await r.flushall();
  const redis0 = procCpu(redis.pid);
  const res = await runAsynq(['produce', redis.url, String(tasks), String(ASYNQ_CONCURRENCY), 'produce']);
  const redisCpu = procCpu(redis.pid) - redis0; // includes the harness's connect: a few ms
  return { rate: res.ops / res.seconds, cpuUs: { 'asynq process': (res.cpuSeconds * 1e6) / res.ops, 'redis-server': (redisCpu * 1e6) / res.ops } };
}

async function asynqConsume(tasks: number): Promise<CpuRun> {
  await r.flushall();
  await runAsynq(['produce', redis.url, String(tasks), String(ASYNQ_CONCURRENCY), 'deliver']);
  const redis0 = procCpu(redis.pid);
  const res = await runAsynq(['consume', redis.url, String(tasks), String(ASYNQ_CONCURRENCY), 'deliver']);
  const redisCpu = procCpu(redis.pid) - redis0;
  return { rate: res.ops / res.seconds, cpuUs: { 'asynq process': (res.cpuSeconds * 1e6) / res.ops, 'redis-server': (redisCpu * 1e6) / res.ops } };
}

async function sluiceProduceCpu(producer: SidecarHandle, tasks: number): Promise<CpuRun> {
  await r.flushall();
  const c0 = [procCpu(producer.pid), procCpu(redis.pid)];
  const app0 = process.cpuUsage();
  const rate = await produceSluice(producer, 'produce', tasks);
  const app = process.cpuUsage(app0);
  return { rate, cpuUs: {
    'app (HTTP client)': (app.user + app.system) / tasks,
    'producer sidecar': ((procCpu(producer.pid) - (c0[0] ?? 0)) * 1e6) / tasks,
    'redis-server': ((procCpu(redis.pid) - (c0[1] ?? 0)) * 1e6) / tasks,
  } };
}

/** consumeSluice with this process's CPU (the no-op app, plus its own light polling) over the timed part. */
async function sluiceConsumeCpu(batchSize: number): Promise<CpuRun> {
  const before = cpuNote.length;
  const startedAt = { cpu: process.cpuUsage() };
  const rate = await consumeSluice(batchSize, () => (startedAt.cpu = process.cpuUsage()));
  const app = process.cpuUsage(startedAt.cpu);
  const note = cpuNote.splice(before).join(' ');
  const num = (re: RegExp) => Number(re.exec(note)?.[1] ?? NaN);
  return { rate, cpuUs: {
    'app (no-op HTTP server)': (app.user + app.system) / DELIVER_TASKS,
    'worker sidecar': num(/worker sidecar ([\d.]+) µs/),
    'redis-server': num(/redis-server ([\d.]+) µs/),
  } };
}

const sumCpu = (c: CpuRun) => Object.values(c.cpuUs).reduce((a, b) => a + b, 0);
const cpuCell = (c: CpuRun) => `${sumCpu(c).toFixed(1)} = ${Object.entries(c.cpuUs).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(' + ')}`;

async function asynqPart(): Promise<void> {
  if (!asynqPeer) return;
  const producer = await startSidecar(group, 'producer-peers', { configYaml: queueYaml('produce', 1, 'nobody'), appHttp: '127.0.0.1:1', nodeArgs, extraArgs: ['--labels', 'app=producer', '--redis', redis.url] });
  await produceSluice(producer, 'produce', WARM_TASKS); // warm-up, as elsewhere
  const rows: (string | number)[][] = [];
  const ratios = { produce: [] as number[], produceCpu: [] as number[], deliver: [] as number[], deliverCpu: [] as number[], single: [] as number[], singleCpu: [] as number[] };
  for (let round = 1; round <= ROUNDS; round++) {
    const a = await asynqProduce(PRODUCE_TASKS);
    const s = await sluiceProduceCpu(producer, PRODUCE_TASKS);
    ratios.produce.push(s.rate / a.rate);
    ratios.produceCpu.push(sumCpu(a) / sumCpu(s));
    rows.push([`produce r${round}: asynq Client.Enqueue, ${ASYNQ_CONCURRENCY} goroutines`, a.rate, cpuCell(a)]);
    rows.push([`produce r${round}: sluice POST …/tasks:batch (${BATCH}), ${IN_FLIGHT_POSTS} in flight`, s.rate, cpuCell(s)]);
    const ad = await asynqConsume(DELIVER_TASKS);
    const sd = await sluiceConsumeCpu(BATCH);
    ratios.deliver.push(sd.rate / ad.rate);
    ratios.deliverCpu.push(sumCpu(ad) / sumCpu(sd));
    rows.push([`deliver+ack r${round}: asynq Server, concurrency ${ASYNQ_CONCURRENCY}, no-op handler`, ad.rate, cpuCell(ad)]);
    rows.push([`deliver+ack r${round}: sluice-proxy → HTTP app, batchSize ${BATCH}`, sd.rate, cpuCell(sd)]);
    if (round === 1) {
      const s1 = await sluiceConsumeCpu(1);
      ratios.single.push(s1.rate / ad.rate);
      ratios.singleCpu.push(sumCpu(ad) / sumCpu(s1));
      rows.push(['deliver+ack r1: sluice-proxy → HTTP app, 1 task per call', s1.rate, cpuCell(s1)]);
    }
  }
  await group.stop(producer.child);
  printTable(`6. ${asynqPeer.version} (Go, GOMAXPROCS=1) beside sluice: ${PRODUCE_TASKS} produced, ${DELIVER_TASKS} delivered+acked per run, ${ROUNDS} alternating rounds; CPU µs per task of every process on the path`,
    ['run', 'tasks/s', 'CPU µs/task (sum = parts)'], rows);
  printAims('Against asynq (median round; "per CPU" = asynq CPU per task / sluice CPU per task, all processes)', [
    { name: 'produce: sluice batches of 50 / asynq one by one, tasks/s', value: median(ratios.produce), kind: 'atLeast', target: 1.5 },
    { name: 'produce: per CPU', value: median(ratios.produceCpu), kind: 'atLeast', target: 1.5 },
    { name: 'deliver+ack: sluice batchSize 50 / asynq, tasks/s', value: median(ratios.deliver), kind: 'atLeast', target: 1.5 },
    { name: 'deliver+ack: sluice batchSize 50 / asynq, per CPU', value: median(ratios.deliverCpu), kind: 'atLeast', target: 1.5 },
    { name: 'deliver+ack: sluice 1 per call / asynq, tasks/s', value: median(ratios.single), kind: 'atLeast', target: 0.5 },
    { name: 'deliver+ack: sluice 1 per call / asynq, per CPU', value: median(ratios.singleCpu), kind: 'atLeast', target: 0.5 },
  ]);
}

if (process.env.BENCH_QUEUE_PEERS_ONLY === '1') {
  try {
    await asynqPart();
  } finally {
    r.disconnect();
    await group.stopAll();
    await redis.stop();
  }
  process.exit(0);
}

// ── 5. ordering keys and redrive ─────────────────────────────────────────────────────────────────

const ORDER_KEYS = 1_000;
const ORDER_TASKS = Number(process.env.BENCH_QUEUE_ORDER_TASKS ?? 20_000);
const REDRIVE_TASKS = Number(process.env.BENCH_QUEUE_REDRIVE_TASKS ?? 20_000);

function orderedQueueDoc(name: string) {
  return {
    apiVersion: 'sluice.dev/v1alpha1', kind: 'TaskQueue', metadata: { name, namespace: 'bench' },
    spec: {
      selector: {}, stream: `bench.${name}`, consumerGroup: 'workers', delivery: { protocol: 'http', path: '/', batchSize: BATCH },
      concurrency: 1_000, visibilityTimeout: '60s', deadLetter: { stream: `bench.${name}.dlq` },
    },
  };
}

/** An in-process consumer with a no-op delivery (the queue's own cost, no app hop). */
function noopFeature(name: string, onDeliver: (n: number) => void): QueueFeature {
  return new QueueFeature({
    redisUrl: redis.url, consumerName: name, registry: new Registry(),
    deliverer: () => ({ deliver: async (tasks) => { onDeliver(tasks.length); return tasks.map(() => ({ ok: true as const, status: 200 })); }, close: async () => {} }),
  });
}

/** Produces ORDER_TASKS (over ORDER_KEYS keys, or none), then times the drain by the consumer. */
async function orderedRun(ordered: boolean): Promise<{ produce: number; drain: number }> {
  await r.flushall();
  const name = ordered ? 'ordered' : 'unordered';
  const doc = orderedQueueDoc(name);
  const producer = await startSidecar(group, `producer-${name}`, { configYaml: `apiVersion: sluice.dev/v1alpha1\nkind: TaskQueue\nmetadata: {name: ${name}, namespace: bench}\nspec: {selector: {matchLabels: {app: nobody}}, stream: bench.${name}, consumerGroup: workers, delivery: {protocol: http, path: /, batchSize: ${BATCH}}, deadLetter: {stream: bench.${name}.dlq}}\n`, appHttp: '127.0.0.1:1', nodeArgs, extraArgs: ['--labels', 'app=producer', '--redis', redis.url] });
  const pool = new Pool(`http://127.0.0.1:${producer.localApiPort}`, { connections: IN_FLIGHT_POSTS });
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT_POSTS }, async () => {
    while (next < ORDER_TASKS) {
      const from = next;
      next += BATCH;
      const tasks = Array.from({ length: BATCH }, (_, i) => ({ payload: { n: from + i }, ...(ordered ? { orderingKey: `k${(from + i) % ORDER_KEYS}` } : {}) }));
      const res = await pool.request({ method: 'POST', path: `/v1/queues/${name}/tasks:batch`, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks }) });
      if (res.statusCode !== 202) throw new Error(`produce answered ${res.statusCode}: ${await res.body.text()}`);
      await res.body.dump();
    }
  }));
  const produce = ORDER_TASKS / ((performance.now() - t0) / 1000);
  await pool.close();
  await group.stop(producer.child);
  let delivered = 0;
  let start = 0;
  const feature = noopFeature(name, (n) => {
    if (start === 0) start = performance.now();
    delivered += n;
  });
  await feature.ready();
  feature.applyPlan(compilePlan([doc]));
  await waitUntil(`${name} all delivered`, () => delivered >= ORDER_TASKS, 300_000, 5);
  await waitUntil(`${name} all acked`, async () => (await pending(`bench.${name}`)) === 0 && (await r.zcard(queueKeys({ namespace: 'bench', stream: `bench.${name}` }).orderWaiting)) === 0, 60_000, 5);
  const drain = ORDER_TASKS / ((performance.now() - start) / 1000);
  await feature.close();
  return { produce, drain };
}

/**
 * The same comparison end to end: a worker sidecar process delivering to the no-op HTTP app
 * (batchSize 50, concurrency 100), the backlog produced first under a selector that does not match
 * it and then selected by rewriting its config, as in part 2 (but without a warm-up queue).
 */
async function orderedSidecarRun(ordered: boolean): Promise<number> {
  await r.flushall();
  const name = ordered ? 'ordered-e2e' : 'unordered-e2e';
  const app = new NoopApp();
  const appAddr = await app.listen();
  const worker = await startSidecar(group, `worker-${name}`, { configYaml: queueYaml(name, BATCH, 'nobody'), appHttp: appAddr, nodeArgs, extraArgs: ['--labels', 'app=worker', '--redis', redis.url] });
  const producer = await startSidecar(group, `producer-${name}`, { configYaml: queueYaml(name, BATCH, 'nobody'), appHttp: appAddr, nodeArgs, extraArgs: ['--labels', 'app=producer', '--redis', redis.url] });
  const pool = new Pool(`http://127.0.0.1:${producer.localApiPort}`, { connections: IN_FLIGHT_POSTS });
  let next = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT_POSTS }, async () => {
    while (next < ORDER_TASKS) {
      const from = next;
      next += BATCH;
      const tasks = Array.from({ length: BATCH }, (_, i) => ({ payload: { n: from + i }, ...(ordered ? { orderingKey: `k${(from + i) % ORDER_KEYS}` } : {}) }));
      const res = await pool.request({ method: 'POST', path: `/v1/queues/${name}/tasks:batch`, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks }) });
      if (res.statusCode !== 202) throw new Error(`produce answered ${res.statusCode}: ${await res.body.text()}`);
      await res.body.dump();
    }
  }));
  await pool.close();
  await group.stop(producer.child);
  writeFileSync(join(worker.dir, 'sluice.yaml'), queueYaml(name, BATCH, 'worker'));
  await waitUntil(`${name} all delivered`, () => app.tasks >= ORDER_TASKS, 300_000, 5);
  await waitUntil(`${name} all acked`, async () => (await pending(`bench.${name}`)) === 0, 60_000, 5);
  const rate = ORDER_TASKS / ((performance.now() - app.first) / 1000);
  await group.stop(worker.child);
  worker.cleanup();
  app.server.close();
  return rate;
}

/** Dead letters moved back per second by one worker at the highest pace (10 000/s), delivered by a no-op. */
async function redriveRun(): Promise<number> {
  await r.flushall();
  const doc = orderedQueueDoc('redrive');
  const keys = queueKeys({ namespace: 'bench', stream: 'bench.redrive', deadLetterStream: 'bench.redrive.dlq' });
  for (let from = 0; from < REDRIVE_TASKS; from += 1_000) {
    const p = r.pipeline();
    for (let i = from; i < Math.min(REDRIVE_TASKS, from + 1_000); i++) p.xadd(keys.deadLetter!, '*', 'p', `{"n":${i}}`, 'i', `t${i}`, 'originalId', `t${i}`, 'error', 'http 500', 'cause', 'exhausted');
    await p.exec();
  }
  let delivered = 0;
  const feature = noopFeature('redrive', (n) => (delivered += n));
  await feature.ready();
  const plan = compilePlan([doc]);
  feature.applyPlan(plan);
  const start = performance.now();
  await feature.redrive(plan.taskQueues[0]!, { max: 0, perSecond: 10_000, error: '', cause: '' });
  await waitUntil('redrive done', async () => (await r.hget(keys.redrive, 'state')) === 'done', 300_000, 5);
  const moved = Number(await r.hget(keys.redrive, 'moved'));
  const rate = moved / ((performance.now() - start) / 1000);
  await waitUntil('redriven delivered', () => delivered >= REDRIVE_TASKS, 120_000, 5);
  await feature.close();
  if (moved !== REDRIVE_TASKS) throw new Error(`redrive moved ${moved}, expected ${REDRIVE_TASKS}`);
  return rate;
}

async function orderingPart(): Promise<{ ratio: number; e2eRatio: number; redrive: number }> {
  const rounds: { unordered: { produce: number; drain: number }; ordered: { produce: number; drain: number } }[] = [];
  for (let round = 0; round < ROUNDS; round++) rounds.push({ unordered: await orderedRun(false), ordered: await orderedRun(true) });
  printTable(`5a. Ordering keys: ${ORDER_TASKS} tasks over ${ORDER_KEYS} keys vs the same without keys — produced in batches of ${BATCH} through sluice-proxy, drained by an in-process consumer (concurrency 1000, batchSize ${BATCH}, no-op delivery), tasks/s`,
    ['round', 'produce unordered', 'produce ordered', 'ratio', 'drain unordered', 'drain ordered', 'ratio'],
    rounds.map((x, i) => [String(i + 1), x.unordered.produce, x.ordered.produce, x.ordered.produce / x.unordered.produce, x.unordered.drain, x.ordered.drain, x.ordered.drain / x.unordered.drain]));
  const e2e: { unordered: number; ordered: number }[] = [];
  for (let round = 0; round < ROUNDS; round++) e2e.push({ unordered: await orderedSidecarRun(false), ordered: await orderedSidecarRun(true) });
  printTable(`5b. The same end to end: worker sidecar → no-op HTTP app, batchSize ${BATCH}, concurrency ${CONCURRENCY}, ${ORDER_TASKS} tasks (delivered + acked/s)`,
    ['round', 'unordered', `ordered (${ORDER_KEYS} keys)`, 'ratio'], e2e.map((x, i) => [String(i + 1), x.unordered, x.ordered, x.ordered / x.unordered]));
  const redrive = await redriveRun();
  printTable(`5c. Dead-letter redrive, ${REDRIVE_TASKS} dead letters, perSecond 10000 (the cap), one worker`, ['moved back/s'], [[redrive]]);
  return { ratio: median(rounds.map((x) => x.ordered.drain / x.unordered.drain)), e2eRatio: median(e2e.map((x) => x.ordered / x.unordered)), redrive };
}

// ── 4. latency at half the maximum rate ──────────────────────────────────────────────────────────

async function latencyAt(rate: number, perSecond = false): Promise<{ p50: number; p99: number; max: number; n: number; achieved: number }> {
  await r.flushall();
  const app = new NoopApp();
  app.latency = new Samples();
  app.sentAt = new Samples();
  const appAddr = await app.listen();
  const yaml = queueYaml('latency', 1, 'worker');
  const worker = await startSidecar(group, 'worker-latency', { configYaml: yaml, appHttp: appAddr, nodeArgs, extraArgs: ['--labels', 'app=worker', '--redis', redis.url] });
  const producer = await startSidecar(group, 'producer-latency', { configYaml: yaml, appHttp: appAddr, nodeArgs, extraArgs: ['--labels', 'app=producer', '--redis', redis.url] });
  const pool = new Pool(`http://127.0.0.1:${producer.localApiPort}`, { connections: 16 });
  // Every 5 ms a batch sized for the target rate; each task carries the wall time it was sent at.
  const tickMs = 5;
  let owed = 0;
  let sent = 0;
  const start = performance.now();
  const posts: Promise<void>[] = [];
  while (performance.now() - start < LATENCY_WARM_MS + LATENCY_RUN_MS) {
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
  // The first LATENCY_WARM_MS warm the JIT and the connections; the steady state is what is reported.
  const sentTimes = app.sentAt!.values();
  const firstSent = sentTimes[0] ?? 0;
  const samples = app.latency.values().filter((_, i) => (sentTimes[i] ?? 0) - firstSent >= LATENCY_WARM_MS);
  if (perSecond) {
    const sent = app.sentAt!.values();
    const all = app.latency.values();
    const t0 = sent[0] ?? 0;
    for (let s = 0; s * 1000 < LATENCY_WARM_MS + LATENCY_RUN_MS; s++) {
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

if (process.env.BENCH_QUEUE_PRODUCE_ONLY) {
  // Diagnostic mode: only the sluice producing run (pair with BENCH_QUEUE_PROF).
  try {
    const producer = await startSidecar(group, 'producer', { configYaml: queueYaml('produce', 1, 'nobody'), appHttp: '127.0.0.1:1', nodeArgs, extraArgs: ['--labels', 'app=producer', '--redis', redis.url] });
    await produceSluice(producer, 'produce', WARM_TASKS);
    await r.flushall();
    await r.config('RESETSTAT');
    const c0 = [procCpu(producer.pid), procCpu(redis.pid)];
    console.log(`sluice produce: ${Math.round(await produceSluice(producer, 'produce', PRODUCE_TASKS))} tasks/s`);
    console.log(`producer sidecar ${((procCpu(producer.pid) - (c0[0] ?? 0)) * 1e6 / PRODUCE_TASKS).toFixed(1)} µs CPU/task, redis-server ${((procCpu(redis.pid) - (c0[1] ?? 0)) * 1e6 / PRODUCE_TASKS).toFixed(1)} µs/task`);
    console.log((await r.info('commandstats')).split('\r\n').filter((l) => /^cmdstat_(evalsha|xadd)/.test(l)).join('\n'));
  } finally {
    r.disconnect();
    await group.stopAll();
    await redis.stop();
  }
  process.exit(0);
}

if (process.env.BENCH_QUEUE_ORDERED_ONLY === '1') {
  try {
    console.log(`TaskQueue ordering keys and redrive — ${cpus().length} cores, ${cpus()[0]?.model ?? ''}`);
    await asynqPart();
  const o = await orderingPart();
    printAims('Aims', [
      { name: 'delivered+acked end to end, ordered (1000 keys) / unordered (median round)', value: o.e2eRatio, kind: 'atLeast', target: 0.5 },
      { name: 'drain, in-process no-op consumer, ordered / unordered (median round)', value: o.ratio, kind: 'atLeast', target: 0.5 },
    ]);
  } finally {
    r.disconnect();
    await group.stopAll();
    await redis.stop();
  }
  process.exit(0);
}

const onlyDeliver = Number(process.env.BENCH_QUEUE_DELIVER_ONLY ?? 0);
if (onlyDeliver > 0) {
  // Diagnostic mode: only the sluice delivery run with the given batchSize (pair with BENCH_QUEUE_PROF).
  try {
    console.log(`sluice → HTTP app, batchSize ${onlyDeliver}: ${Math.round(await consumeSluice(onlyDeliver))} tasks/s`);
    console.log(cpuNote.join('\n'));
    // What the run cost Redis, by command (EVALSHA = the scripts: enqueue, settle, promote, …).
    const stats = (await r.info('commandstats')).split('\r\n').filter((l) => /^cmdstat_(evalsha|xreadgroup|xack|xadd|xpending)/.test(l));
    console.log(stats.join('\n'));
  } finally {
    r.disconnect();
    await group.stopAll();
    await redis.stop();
  }
  process.exit(0);
}

try {
  console.log(`TaskQueue vs BullMQ ${(await import('bullmq/package.json', { with: { type: 'json' } }).catch(() => ({ default: { version: '5' } }))).default.version} — ${cpus().length} cores, ${cpus()[0]?.model ?? ''}, redis-server on 127.0.0.1:${redis.port}`);

  // Contenders alternate within each round, and the ratios are medians of the rounds' ratios: on
  // a shared 2-core machine a neighbour's burst then hits both sides of a ratio, not one.
  await r.flushall();
  const producer = await startSidecar(group, 'producer', { configYaml: queueYaml('produce', 1, 'nobody'), appHttp: '127.0.0.1:1', nodeArgs, extraArgs: ['--labels', 'app=producer', '--redis', redis.url] });
  await produceSluice(producer, 'produce', WARM_TASKS); // warm-up, as for deliveries
  await produceBull('bull-warm', WARM_TASKS);
  const produceRounds: { sluice: number; bull: number }[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    await r.flushall();
    const sluice = await produceSluice(producer, 'produce', PRODUCE_TASKS);
    await r.flushall();
    produceRounds.push({ sluice, bull: await produceBull('bull-produce', PRODUCE_TASKS) });
  }
  await group.stop(producer.child);
  printTable(`1. Producing ${PRODUCE_TASKS} tasks in batches of ${BATCH}, ${IN_FLIGHT_POSTS} batches in flight (tasks/s, ${ROUNDS} alternating rounds)`, ['round', 'sluice POST …/tasks:batch (sluice-proxy)', 'BullMQ Queue.addBulk', 'ratio'],
    produceRounds.map((p, i) => [String(i + 1), p.sluice, p.bull, p.sluice / p.bull]));

  const deliverRounds: { bull: number; sluice: number }[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const bull = await consumeBull();
    deliverRounds.push({ bull, sluice: await consumeSluice(BATCH) });
  }
  const bullConsume = median(deliverRounds.map((d) => d.bull));
  const sluiceSingle = await consumeSluice(1);
  const raw = await consumeRaw();
  printTable(`2. Delivered and acknowledged, ${DELIVER_TASKS} tasks, concurrency ${CONCURRENCY}, no-op app (tasks/s, ${ROUNDS} alternating rounds)`, ['round', 'BullMQ Worker, concurrency 100 (removeOnComplete)', `sluice-proxy → HTTP app, batchSize ${BATCH}`, 'ratio'],
    deliverRounds.map((d, i) => [String(i + 1), d.bull, d.sluice, d.sluice / d.bull]));
  printTable(`3. Delivered and acknowledged, ${DELIVER_TASKS} tasks (raw: ${DELIVER_TASKS * 2}), after the rounds`, ['contender', 'tasks/s'], [
    ['BullMQ Worker, concurrency 100 (median of the rounds)', bullConsume],
    ['sluice-proxy → HTTP app, 1 task per call', sluiceSingle],
    ['sluice consumer, no app hop (raw ceiling, concurrency 1000)', raw],
  ]);

  const half = sluiceSingle / 2;
  const lat = await latencyAt(half);
  printTable(`4. Enqueue→delivery at half the 1-task-per-call maximum (${Math.round(half)}/s target), producer sidecar → Redis → worker sidecar → app`, ['achieved/s', 'samples', 'p50 ms', 'p99 ms', 'max ms'], [
    [lat.achieved, lat.n, lat.p50, lat.p99, lat.max],
  ]);

  await asynqPart();
  const o = await orderingPart();

  printAims('Aims', [
    { name: 'delivered+acked end to end, ordered (1000 keys) / unordered (median round)', value: o.e2eRatio, kind: 'atLeast', target: 0.5 },
    { name: 'drain, in-process no-op consumer, ordered / unordered (median round)', value: o.ratio, kind: 'atLeast', target: 0.5 },
    { name: 'produce, batches of 50: sluice / BullMQ addBulk (median round)', value: median(produceRounds.map((p) => p.sluice / p.bull)), kind: 'atLeast', target: 3 },
    { name: 'deliver+ack, batchSize 50: sluice / BullMQ worker (median round)', value: median(deliverRounds.map((d) => d.sluice / d.bull)), kind: 'atLeast', target: 3 },
    { name: 'deliver+ack, 1 per call: sluice / BullMQ worker', value: sluiceSingle / bullConsume, kind: 'atLeast', target: 0.5 },
    { name: 'p99 enqueue→delivery at half max rate (ms)', value: lat.p99, kind: 'atMost', target: 10, format: (v) => v.toFixed(1) },
  ]);
} finally {
  r.disconnect();
  await group.stopAll();
  await redis.stop();
}
