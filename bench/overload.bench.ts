// Overload benchmark (`npm run bench:overload`): an app of fixed capacity (SLOTS calls at a time ×
// SERVICE_MS each; extra calls queue inside it) behind a sidecar, offered 0.5×, 1×, 2× and 4× its
// capacity by an open-loop generator (latency counted from each call's scheduled start, so a
// backed-up client cannot hide queueing). Contenders, each its own sidecar process:
//   none        — no policy;
//   static      — a bulkhead sized to the app (maxConcurrentRequests = SLOTS);
//   static-4x   — a bulkhead four times too big;
//   adaptive    — adaptiveConcurrency (Gradient).
// The three protected ones share one queue setting (maxPendingRequests SLOTS, maxPendingWait one
// service time).
// Figures: goodput (200s within 10× the unloaded p50) as a share of capacity; the admitted calls'
// p99 over the unloaded p99. Then, offered 1× of the original capacity, the app's capacity halves
// mid-run: seconds until a 1 s window's p99 stays within 2× unloaded.
// A queue variant follows: a TaskQueue worker that slows down mid-run, delivered with adaptive
// concurrency against fixed 16 and 64 — throughput and p99 task latency (enqueue → done).
//
// Knobs: SLOTS=8, SERVICE_MS=80 (100 calls/s: small rates, the machine is shared), BENCH_SECONDS=5.
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { RedisServer } from '../test/helpers/redis-server.ts';
import { NODE, ProcessGroup, sleep } from './lib/processes.ts';
import { startSidecar, type SidecarHandle } from './lib/sidecar.ts';
import { printAims, printTable, type Aim } from './lib/table.ts';

const SLOTS = Number(process.env.SLOTS ?? 8);
const SERVICE_MS = Number(process.env.SERVICE_MS ?? 80);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CAPACITY = (SLOTS * 1000) / SERVICE_MS; // calls per second
const SETTLE_S = 1;
const LEVELS = [0.5, 1, 2, 4];

const group = new ProcessGroup();
const appChild = group.start('app', NODE, [resolve(import.meta.dirname, 'lib/capacity-app.ts')], { env: { ...process.env, SLOTS: String(SLOTS), SERVICE_MS: String(SERVICE_MS) } });
const appPort = Number((await appChild.waitForLine(/^listening/)).split(' ')[1]);
const appHost = `127.0.0.1:${appPort}`;
const control = new Pool(`http://${appHost}`, { connections: 2 });
const appCall = async (path: string) => (await (await control.request({ method: 'GET', path })).body.text());

const queueSetting = `maxPendingRequests: ${SLOTS}, maxPendingWait: ${SERVICE_MS}ms`;
const rule = (body: string) => `apiVersion: sluice.dev/v1alpha1
kind: CircuitBreakerPolicy
metadata: {name: app, namespace: bench}
spec:
  selector: {}
  rules:
    - name: app
${body}`;
const CONTENDERS: { name: string; yaml: string }[] = [
  { name: 'none', yaml: '' },
  { name: 'static', yaml: rule(`      bulkhead: {maxConcurrentRequests: ${SLOTS}, ${queueSetting}}`) },
  { name: 'static-4x', yaml: rule(`      bulkhead: {maxConcurrentRequests: ${SLOTS * 4}, ${queueSetting}}`) },
  { name: 'adaptive', yaml: rule(`      adaptiveConcurrency: {algorithm: Gradient, minLimit: 1, maxLimit: 1000, initialLimit: ${SLOTS}, sampleWindow: 100ms, tolerancePercent: 25}
      bulkhead: {maxConcurrentRequests: 10000, ${queueSetting}}`) },
];

interface Call { at: number; latency: number; status: number }

/** Open loop: `rate` calls/s for `seconds`, each timed from its scheduled start. */
async function offer(pool: Pool, rate: number, seconds: number, onTick?: (elapsedMs: number) => void): Promise<Call[]> {
  const calls: Call[] = [];
  const pending: Promise<void>[] = [];
  const start = performance.now();
  const total = Math.round(rate * seconds);
  let sent = 0;
  while (sent < total) {
    const now = performance.now();
    onTick?.(now - start);
    const due = Math.min(total, Math.floor(((now - start) / 1000) * rate) + 1);
    for (; sent < due; sent++) {
      const scheduled = start + (sent * 1000) / rate;
      pending.push(pool.request({ method: 'GET', path: '/work', headersTimeout: 10_000, bodyTimeout: 10_000 }).then(
        async (r) => {
          await r.body.dump();
          calls.push({ at: scheduled - start, latency: performance.now() - scheduled, status: r.statusCode });
        },
        () => {
          calls.push({ at: scheduled - start, latency: performance.now() - scheduled, status: 0 });
        },
      ));
    }
    await sleep(1);
  }
  await Promise.all(pending);
  return calls;
}

function pct(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
}

async function resetApp(): Promise<void> {
  await appCall('/__capacity?slots=' + SLOTS);
  for (let i = 0; i < 100; i++) {
    await appCall('/__reset');
    const s = JSON.parse(await appCall('/__state')) as { busy: number; waiting: number };
    if (s.busy === 0 && s.waiting === 0) return;
    await sleep(50);
  }
}

const sidecars = new Map<string, SidecarHandle>();
for (const c of CONTENDERS) sidecars.set(c.name, await startSidecar(group, `sidecar-${c.name}`, { configYaml: c.yaml, appHttp: appHost }));
const pools = new Map([...sidecars].map(([n, s]) => [n, new Pool(`http://127.0.0.1:${s.httpPort}`, { connections: 2048, pipelining: 1 })]));

// Unloaded: one call at a time through the sidecar with no policy (the first 50 warm it up).
const unloaded: number[] = [];
for (let i = -50; i < 500; i++) {
  const t0 = performance.now();
  await (await pools.get('none')!.request({ method: 'GET', path: '/work' })).body.dump();
  if (i >= 0) unloaded.push(performance.now() - t0);
}
const u50 = pct(unloaded, 0.5);
const u99 = pct(unloaded, 0.99);
console.log(`app: ${SLOTS} slots × ${SERVICE_MS} ms = ${CAPACITY} calls/s; unloaded through the sidecar p50 ${u50.toFixed(1)} ms, p99 ${u99.toFixed(1)} ms; good = 200 within ${(10 * u50).toFixed(0)} ms`);

const results = new Map<string, { goodput: number; p99: number; p99ms: number; refused: number }>();
for (const c of CONTENDERS) {
  const pool = pools.get(c.name)!;
  for (const level of LEVELS) {
    await resetApp();
    const calls = await offer(pool, CAPACITY * level, SECONDS + SETTLE_S);
    const measured = calls.filter((x) => x.at >= SETTLE_S * 1000);
    const ok = measured.filter((x) => x.status === 200);
    const good = ok.filter((x) => x.latency <= 10 * u50).length;
    results.set(`${c.name}@${level}`, {
      goodput: good / (CAPACITY * SECONDS),
      p99: pct(ok.map((x) => x.latency), 0.99) / u99,
      p99ms: pct(ok.map((x) => x.latency), 0.99),
      refused: measured.filter((x) => x.status === 503).length / Math.max(1, measured.length),
    });
  }
}
printTable('goodput (share of capacity) / admitted p99 ÷ unloaded p99 (p99 ms) / share refused', ['contender', ...LEVELS.map((l) => `${l}×`)], CONTENDERS.map((c) => [
  c.name, ...LEVELS.map((l) => {
    const r = results.get(`${c.name}@${l}`)!;
    return `${(r.goodput * 100).toFixed(0)}% / ${r.p99.toFixed(1)}× (${r.p99ms.toFixed(0)}) / ${(r.refused * 100).toFixed(0)}%`;
  }),
]));

/** Offered 1× the original capacity; the app's capacity halves at 3 s; when is p99 back within 2×? */
async function halving(name: string): Promise<{ seconds: number; before: number; after: number; limit: string }> {
  await resetApp();
  const HALVE_AT = 3_000;
  let halved = false;
  const total = 12;
  const calls = await offer(pools.get(name)!, CAPACITY, total, (t) => {
    if (!halved && t >= HALVE_AT) {
      halved = true;
      void appCall(`/__capacity?slots=${Math.max(1, SLOTS / 2)}`);
    }
  });
  const windowP99 = (from: number) => pct(calls.filter((x) => x.status === 200 && x.at >= from && x.at < from + 1000).map((x) => x.latency), 0.99);
  let back = NaN;
  for (let t = HALVE_AT; t + 1000 <= total * 1000; t += 250) {
    let ok = true;
    for (let u = t; u + 1000 <= total * 1000; u += 250) if (!(windowP99(u) <= 2 * u99)) ok = false;
    if (ok) {
      back = (t + 1000 - HALVE_AT) / 1000;
      break;
    }
  }
  const m = await (await fetch(`http://127.0.0.1:${sidecars.get(name)!.adminPort}/metrics`)).text();
  const limit = /sluice_adaptive_concurrency_limit\{[^}]*\} (\d+)/.exec(m)?.[1] ?? '-';
  return { seconds: back, before: windowP99(1_000) / u99, after: windowP99((total - 1) * 1000) / u99, limit };
}
const halvings = new Map<string, Awaited<ReturnType<typeof halving>>>();
for (const name of ['static', 'adaptive']) halvings.set(name, await halving(name));
printTable('capacity halves mid-run (offered 1× of the original): seconds until p99 stays within 2× unloaded', ['contender', 'seconds', 'p99 before', 'p99 last second', 'limit at the end'], [...halvings].map(([n, h]) => [
  n, Number.isNaN(h.seconds) ? 'never (in 9 s)' : h.seconds.toFixed(2), `${h.before.toFixed(1)}×`, `${h.after.toFixed(1)}×`, h.limit,
]));

const a4 = results.get('adaptive@4')!;
const s4 = results.get('static@4')!;
const aims: Aim[] = [
  { name: 'adaptive goodput at 4× (share of capacity)', value: a4.goodput, kind: 'atLeast', target: 0.9 },
  { name: 'adaptive admitted p99 at 4× ÷ unloaded p99', value: a4.p99, kind: 'atMost', target: 3 },
  { name: 'adaptive goodput at 4× ÷ well-sized static', value: a4.goodput / s4.goodput, kind: 'atLeast', target: 0.9 },
  { name: 'adaptive seconds to reconverge after halving', value: halvings.get('adaptive')!.seconds, kind: 'atMost', target: 5 },
];
printAims('aims', aims);

// ── queue variant ───────────────────────────────────────────────────────────────────────────────
const QUEUE_TASKS = Number(process.env.BENCH_QUEUE_TASKS ?? 800);
const WORKER_SLOTS = 4;
const redis = await RedisServer.start();
const r = new Redis(redis.url);
/**
 * A worker with WORKER_SLOTS slots; a task takes 20 ms, then 80 ms once half the tasks are done.
 * Tasks beyond the slots queue inside it, like the app above. Records each task's time at the
 * worker (arrival → answer) and from enqueue to done.
 */
function worker() {
  let busy = 0;
  let done = 0;
  let slowAfter = Infinity;
  const waiting: (() => void)[] = [];
  const latencies: number[] = [];
  const atWorker: number[] = [];
  let first = 0;
  let last = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const t = (JSON.parse(Buffer.concat(chunks).toString()) as { t: number }).t;
      const arrived = Date.now();
      const go = () => {
        busy++;
        setTimeout(() => {
          busy--;
          done++;
          res.end();
          const now = Date.now();
          latencies.push(now - t);
          atWorker.push(now - arrived);
          first ||= now;
          last = now;
          while (busy < WORKER_SLOTS && waiting.length > 0) waiting.shift()!();
        }, done >= slowAfter ? 80 : 20);
      };
      if (busy < WORKER_SLOTS) go();
      else waiting.push(go);
    });
  });
  return { server, latencies, atWorker, get done() { return done; }, set slowAfter(n: number) { slowAfter = n; }, span: () => (last - first) / 1000 };
}
const queueRows: (string | number)[][] = [];
for (const [name, spec] of [['fixed-16', 'concurrency: 16'], ['fixed-64', 'concurrency: 64'], ['adaptive', 'concurrency: 16, adaptiveConcurrency: {min: 1, max: 64}']] as const) {
  const w = worker();
  w.slowAfter = QUEUE_TASKS / 2;
  await new Promise<void>((ok) => w.server.listen(0, '127.0.0.1', ok));
  const yaml = `apiVersion: sluice.dev/v1alpha1
kind: TaskQueue
metadata: {name: q-${name}, namespace: bench}
spec: {selector: {matchLabels: {app: worker}}, stream: bench.${name}, consumerGroup: workers, delivery: {protocol: http, path: /, timeout: 30s}, ${spec}, visibilityTimeout: 60s}
`;
  const sc = await startSidecar(group, `worker-${name}`, { configYaml: yaml, appHttp: `127.0.0.1:${(w.server.address() as AddressInfo).port}`, extraArgs: ['--labels', 'app=worker', '--redis', redis.url] });
  const producer = new Pool(`http://127.0.0.1:${sc.localApiPort}`, { connections: 8 });
  // Enqueued as a burst, all at once: what a worker meets after an outage or a batch job.
  const t = Date.now();
  for (let i = 0; i < QUEUE_TASKS; i += 100) {
    const tasks = Array.from({ length: Math.min(100, QUEUE_TASKS - i) }, () => ({ payload: { t } }));
    const res = await producer.request({ method: 'POST', path: `/v1/queues/q-${name}/tasks:batch`, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks }) });
    await res.body.dump();
    if (res.statusCode >= 300) throw new Error(`enqueue: ${res.statusCode}`);
  }
  while (w.done < QUEUE_TASKS) await sleep(100);
  const seconds = (Date.now() - t) / 1000;
  queueRows.push([name, (QUEUE_TASKS / seconds).toFixed(0), pct(w.atWorker.slice(0, QUEUE_TASKS / 2), 0.99).toFixed(0), pct(w.atWorker.slice(QUEUE_TASKS / 2), 0.99).toFixed(0), pct(w.latencies, 0.99).toFixed(0)]);
  await producer.close();
  w.server.close();
}
printTable(`queue: ${QUEUE_TASKS} tasks enqueued at once; the worker (${WORKER_SLOTS} slots) slows from 20 to 80 ms a task halfway`, ['worker concurrency', 'tasks/s', 'p99 at the worker, 1st half (ms)', 'p99 at the worker, 2nd half (ms)', 'p99 enqueue → done (ms)'], queueRows);

await r.quit();
await redis.stop();
for (const p of pools.values()) await p.close();
await control.close();
await group.stopAll();
console.log(`\nmachine: ${(await import('node:os')).cpus().length} cores, load average ${(await import('node:os')).loadavg().map((l) => l.toFixed(1)).join(' ')} (shared with other engineers' work)`);
