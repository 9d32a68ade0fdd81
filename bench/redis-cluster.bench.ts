// Sluice's Redis work on a 3-master Redis Cluster against one redis-server, in one run:
// strict global-limit decisions/s over many rules (one rule = one slot), TaskQueue produce/s and
// deliver/s over many queues (one queue = one slot), and each node's share of the commands
// (INFO commandstats). `npm run bench:redis-cluster`.
//
// Read with care on a small machine: every redis-server and this process share the same cores, so
// a cluster cannot show its real gain (three servers' worth of CPU) here; what it can show is the
// client-side cost of routing and that the work spreads evenly over the masters.
import { cpus, loadavg } from 'node:os';
import { Registry } from 'prom-client';
import { systemClock } from '../lib/clock.ts';
import { silentLogger } from '../lib/log.ts';
import { compilePlan } from '../lib/policy/index.ts';
import type { RateLimitRule } from '../lib/policy/plan.ts';
import { connectRedis, waitReady } from '../lib/redis/connection.ts';
import { createGlobalLimiter, type GlobalLimiter } from '../sidecar/src/limit/global/index.ts';
import { QueueFeature } from '../sidecar/src/queue/index.ts';
import { TaskProducer } from '../sidecar/src/queue/producer.ts';
import { RedisClusterProcesses } from '../test/helpers/redis-cluster.ts';
import { RedisServer } from '../test/helpers/redis-server.ts';
import { commandCount } from './lib/redis-stats.ts';
import { printTable } from './lib/table.ts';

const RULES = 256;
const DECIDE_MS = 4_000;
const IN_FLIGHT = 256;
const QUEUES = 32;
const TASKS = 40_000;
const BATCH = 100;

interface Target {
  readonly name: string;
  readonly url: string;
  /** Ports of the servers that hold data (the masters), for per-node command counts. */
  readonly ports: readonly number[];
}

async function counts(t: Target): Promise<number[]> {
  return Promise.all(t.ports.map(async (port) => {
    const c = connectRedis({ url: `redis://127.0.0.1:${port}`, name: 'bench-stats', commandTimeoutMs: 5_000 });
    try {
      await waitReady(c);
      return await commandCount(c);
    } finally {
      c.disconnect();
    }
  }));
}

function rules(): RateLimitRule[] {
  return compilePlan([{
    apiVersion: 'sluice.dev/v1alpha1', kind: 'RateLimitPolicy', metadata: { name: 'bench', namespace: 'bench' },
    spec: { selector: {}, rules: Array.from({ length: RULES }, (_, i) => ({ name: `r${i}`, limit: { requests: 1_000_000, per: '1s', burst: 1_000_000 }, scope: 'Global', failureMode: 'Open' })) },
  }]).rateLimits as RateLimitRule[];
}

/** Strict decisions (one script call each) spread over all rules, IN_FLIGHT at a time, on one connection as the sidecar has. */
async function decide(t: Target): Promise<{ perSecond: number; perNode: number[] }> {
  const redis = connectRedis({ url: t.url, name: 'bench-limits', commandTimeoutMs: 2_000 });
  await waitReady(redis, 10_000);
  const limiters: GlobalLimiter[] = rules().map((r) => createGlobalLimiter(r, { redis, clock: systemClock, logger: silentLogger, registry: new Registry(), sidecarId: 'bench', mode: 'strict' }));
  const before = await counts(t);
  let done = 0;
  const end = performance.now() + DECIDE_MS;
  const start = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, async (_, w) => {
    for (let i = w; performance.now() < end; i += IN_FLIGHT) {
      await limiters[i % RULES]!.consume('k', systemClock.now());
      done++;
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  const after = await counts(t);
  for (const l of limiters) l.close();
  redis.disconnect();
  return { perSecond: done / seconds, perNode: after.map((a, i) => a - (before[i] as number)) };
}

function queueDocs(run: string) {
  return Array.from({ length: QUEUES }, (_, i) => ({
    apiVersion: 'sluice.dev/v1alpha1', kind: 'TaskQueue', metadata: { name: `q${i}`, namespace: 'bench' },
    spec: { selector: {}, stream: `bench.${run}.q${i}`, consumerGroup: 'workers', delivery: { protocol: 'http', path: '/', batchSize: 20 }, concurrency: 64 },
  }));
}

/** Produces TASKS over QUEUES queues (batches of BATCH), then times their delivery by one consumer per queue. */
async function queues(t: Target, run: string): Promise<{ produce: number; deliver: number; perNode: number[] }> {
  const plan = compilePlan(queueDocs(run));
  const client = connectRedis({ url: t.url, name: 'bench-producer', commandTimeoutMs: 5_000 });
  await waitReady(client, 10_000);
  const producer = new TaskProducer(client);
  const before = await counts(t);
  let next = 0;
  const produceStart = performance.now();
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < TASKS / BATCH) {
      const n = next++;
      await producer.enqueue(plan.taskQueues[n % QUEUES]!, Array.from({ length: BATCH }, (_, i) => ({ payload: `{"n":${n},"i":${i}}`, contentType: 'application/json', idempotencyKey: undefined, delayMs: 0 })));
    }
  }));
  const produce = TASKS / ((performance.now() - produceStart) / 1000);
  let delivered = 0;
  let deliverStart = 0;
  const feature = new QueueFeature({
    redisUrl: t.url, consumerName: 'bench', registry: new Registry(), blockMs: 200,
    deliverer: () => ({
      deliver: async (tasks) => {
        if (deliverStart === 0) deliverStart = performance.now();
        delivered += tasks.length;
        return tasks.map(() => ({ ok: true as const, status: 200 }));
      },
      close: async () => {},
    }),
  });
  await feature.ready(10_000);
  feature.applyPlan(plan);
  const deadline = Date.now() + 120_000;
  while (delivered < TASKS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const deliver = delivered / ((performance.now() - deliverStart) / 1000);
  await feature.close();
  const after = await counts(t);
  client.disconnect();
  return { produce, deliver, perNode: after.map((a, i) => a - (before[i] as number)) };
}

const single = await RedisServer.start();
const cluster = await RedisClusterProcesses.start({ masters: 3, replicasPerMaster: 0 });
try {
  const targets: Target[] = [
    { name: 'one server', url: single.url, ports: [single.port] },
    { name: 'cluster, 3 masters', url: cluster.url, ports: cluster.nodes.map((n) => n.port) },
  ];
  console.log(`Redis Cluster vs one server — ${cpus().length} cores, ${cpus()[0]?.model ?? ''}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const d: Awaited<ReturnType<typeof decide>>[] = [];
  const q: Awaited<ReturnType<typeof queues>>[] = [];
  for (const t of targets) d.push(await decide(t));
  for (const t of targets) q.push(await queues(t, t === targets[0] ? 'single' : 'cluster'));
  const share = (perNode: number[]) => perNode.map((n) => `${Math.round((100 * n) / Math.max(1, perNode.reduce((a, b) => a + b, 0)))}%`).join(' / ');
  printTable(`Strict global-limit decisions, ${RULES} rules, ${IN_FLIGHT} in flight, one connection`, ['target', 'decisions/s', 'ratio', 'commands', 'share per node'],
    targets.map((t, i) => [t.name, Math.round(d[i]!.perSecond), (d[i]!.perSecond / d[0]!.perSecond).toFixed(2), d[i]!.perNode.reduce((a, b) => a + b, 0), share(d[i]!.perNode)]));
  printTable(`TaskQueue, ${QUEUES} queues, ${TASKS} tasks (batches of ${BATCH}), one consumer per queue`, ['target', 'produce/s', 'ratio', 'deliver/s', 'ratio', 'commands', 'share per node'],
    targets.map((t, i) => [t.name, Math.round(q[i]!.produce), (q[i]!.produce / q[0]!.produce).toFixed(2), Math.round(q[i]!.deliver), (q[i]!.deliver / q[0]!.deliver).toFixed(2), q[i]!.perNode.reduce((a, b) => a + b, 0), share(q[i]!.perNode)]));
} finally {
  await cluster.stop();
  await single.stop();
}
