import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../lib/clock.ts';
import { silentLogger } from '../lib/log.ts';
import { compilePlan } from '../lib/policy/index.ts';
import { connectRedis, waitReady } from '../lib/redis/connection.ts';
import { hashSlot, queueKeys, rateLimitBucketKey } from '../lib/redis/key-layout.ts';
import { createGlobalLimiter } from '../sidecar/src/limit/global/index.ts';
import { globalRule } from '../sidecar/test/global-limit/rules.ts';
import { QueueHarness, taskQueueDoc, testQueueKeys } from '../sidecar/test/queue/helpers/queue-harness.ts';
import { mixedOutcomes, WorkerApp } from '../sidecar/test/queue/helpers/worker-app.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp } from './helpers/app-server.ts';
import { eventually, sleep } from './helpers/eventually.ts';
import { spawnSidecar } from './helpers/sidecar-process.ts';
import { admissionsPerUser, perUserGlobalLimit } from './helpers/global-limit-config.ts';
import { deleteQueueData, ensureStreamAndGroup, queueStats } from '../operator/src/task-queue/queue-redis.ts';
import { CLUSTER_NODE_TIMEOUT_MS, RedisClusterProcesses } from './helpers/redis-cluster.ts';
import { runFailoverLoad } from './helpers/failover-load.ts';
import type { RedisServer } from './helpers/redis-server.ts';

/**
 * Global limits and task queues on a real Redis Cluster (3 masters, each with a replica), through
 * the same `connectRedis` the sidecar uses with a `redis+cluster://` URL: commands are routed by
 * slot, MOVED / ASK are followed during a slot migration, and a killed master is failed over.
 * One cluster for the file; the tests run in order and the last one kills a master.
 */
let cluster: RedisClusterProcesses;
let client: Redis;
const stops: (() => unknown)[] = [];

beforeAll(async () => {
  cluster = await RedisClusterProcesses.start({ masters: 3, replicasPerMaster: 1 });
  client = connectRedis({ url: cluster.url, name: 'test', commandTimeoutMs: 2_000 });
  await waitReady(client, 10_000);
}, 90_000);
afterAll(async () => {
  for (const s of stops.reverse()) await Promise.resolve().then(s).catch(() => {});
  client?.disconnect();
  await cluster?.stop();
});

function limiters(ruleName: string, n: number, limit: Record<string, unknown>, failureMode: 'Open' | 'Closed', registry = new Registry()) {
  const rule = globalRule(ruleName, limit, failureMode);
  return Array.from({ length: n }, (_, i) => {
    const redis = connectRedis({ url: cluster.url, name: `${ruleName}-${i}`, commandTimeoutMs: 300 });
    const limiter = createGlobalLimiter(rule, { redis, clock: systemClock, logger: silentLogger, registry, sidecarId: `s${i}`, heartbeatMs: 200, mode: 'strict' });
    stops.push(() => { limiter.close(); redis.disconnect(); });
    return { redis, limiter, rule, registry };
  });
}

async function fallbacks(registry: Registry): Promise<number> {
  const values = (await registry.getSingleMetric('sluice_ratelimit_global_fallbacks_total')?.get())?.values ?? [];
  return values.reduce((s, v) => s + v.value, 0);
}

async function mastersOf(keys: readonly string[]): Promise<Set<number>> {
  const ports = new Set<number>();
  for (const k of keys) ports.add((await cluster.masterOfSlot(hashSlot(k))).port);
  return ports;
}

/** MOVED and ASK error replies sent so far, summed over the live nodes (INFO errorstats, Redis 7). */
async function redirectReplies(): Promise<{ MOVED: number; ASK: number }> {
  const total = { MOVED: 0, ASK: 0 };
  for (const node of cluster.liveNodes()) {
    const info = await cluster.onNode<string>(node, 'INFO', 'errorstats');
    for (const kind of ['MOVED', 'ASK'] as const) total[kind] += Number(new RegExp(`errorstat_${kind}:count=(\\d+)`).exec(info)?.[1] ?? 0);
  }
  return total;
}

/**
 * Moves one slot from its master to another the way `redis-cli --cluster reshard` does: IMPORTING
 * on the target, MIGRATING on the source, MIGRATE the keys one at a time (slowly, so clients meet
 * ASK and TRYAGAIN meanwhile), then SETSLOT NODE everywhere.
 */
async function migrateSlot(slot: number, to: RedisServer, pauseMs: number): Promise<number> {
  const from = await cluster.masterOfSlot(slot);
  if (from === to) throw new Error('slot already there');
  const [fromId, toId] = await Promise.all([cluster.nodeId(from), cluster.nodeId(to)]);
  await cluster.onNode(to, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId);
  await cluster.onNode(from, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId);
  let moved = 0;
  for (;;) {
    const keys = await cluster.onNode<string[]>(from, 'CLUSTER', 'GETKEYSINSLOT', slot, 1);
    if (keys.length === 0) break;
    await cluster.onNode(from, 'MIGRATE', '127.0.0.1', to.port, '', 0, 5_000, 'KEYS', ...keys);
    moved += keys.length;
    await sleep(pauseMs);
  }
  for (const node of [to, from]) await cluster.onNode(node, 'CLUSTER', 'SETSLOT', slot, 'NODE', toId);
  for (const node of cluster.liveNodes()) await cluster.onNode(node, 'CLUSTER', 'SETSLOT', slot, 'NODE', toId).catch(() => {});
  return moved;
}

describe('Redis Cluster', () => {
  it('global limits: many rules spread over every master, each shared exactly by two sidecars', async () => {
    const rules = Array.from({ length: 12 }, (_, i) => limiters(`cl-rule-${i}`, 2, { requests: 20, per: '1h', burst: 20 }, 'Closed'));
    const bucketKeys = rules.map(([a]) => rateLimitBucketKey(a!.rule.id, 'client'));
    expect((await mastersOf(bucketKeys)).size).toBe(3);
    for (const pair of rules) for (const { redis } of pair) await waitReady(redis, 10_000);
    const allowed = await Promise.all(rules.map(async (pair) => {
      let n = 0;
      for (let i = 0; i < 40; i++) if ((await pair[i % 2]!.limiter.consume('client', systemClock.now())).allowed) n++;
      return n;
    }));
    expect(allowed).toEqual(rules.map(() => 20));
    expect(await fallbacks(rules[0]![0]!.registry)).toBe(0);
  });

  it('a sluice-proxy process started with --redis redis+cluster:// enforces a Global limit through the cluster', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-cluster-'));
    stops.push(() => rmSync(dir, { recursive: true, force: true }));
    const config = join(dir, 'sluice.yaml');
    writeFileSync(config, perUserGlobalLimit(20));
    const app = await startApp();
    stops.push(() => app.close());
    const sidecar = await spawnSidecar(['--config', config, '--labels', 'app=api', '--app-http', app.hostPort, '--redis', cluster.url, '--id', 'cluster-sidecar', '--log-level', 'warn']);
    stops.push(async () => {
      sidecar.kill('SIGTERM');
      await sidecar.exited;
    });
    const users = Array.from({ length: 9 }, (_, i) => `user-${i}`);
    const admitted = await admissionsPerUser(sidecar.http, users, 30, (status) => expect([200, 429]).toContain(status));
    // Closed: a decision Redis could not answer in time is a 429, never an extra admission.
    for (const n of admitted) expect(n).toBeLessThanOrEqual(20);
    expect(admitted.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(9 * 20 - 20);
  }, 60_000);

  it('queues spread over the shards: produce, deliver, delay, retry, dead-letter, refresh a claim, order, redrive, trim and stats', async () => {
    const names = ['cl-a', 'cl-b', 'cl-c', 'cl-d', 'cl-e', 'cl-f'];
    expect((await mastersOf(names.map((n) => testQueueKeys(n).stream))).size).toBe(3);
    const app = await WorkerApp.start(mixedOutcomes);
    stops.push(() => app.close());
    const docs = names.map((n) => taskQueueDoc(n, { visibilityTimeout: '1s', retention: { maxLen: 3 }, deadLetter: { stream: `test.${n}.dlq`, maxLen: 10 } }));
    const h = await QueueHarness.start({ redisUrl: cluster.url, docs, appHttp: app.address });
    stops.push(() => h.close());
    const plans = compilePlan(docs).taskQueues;
    for (const n of names) {
      expect((await h.post(n, { n: 1 })).status).toBe(202);
      const first = await h.post(n, { n: 2 }, { 'idempotency-key': 'k' });
      const again = await h.post(n, { n: 2 }, { 'idempotency-key': 'k' });
      expect(again.json).toEqual({ id: first.json.id, duplicate: true });
      expect((await h.post(n, { delayed: true }, { 'sluice-delay': '300ms' })).status).toBe(202);
      const batch = await h.postBatch(n, [{ payload: { fail: 'retry' } }, { payload: { fail: 'perm' } }, { payload: { slow: true } }, { payload: 'x', contentType: 'text/plain' }]);
      expect(batch.status).toBe(202);
      const ordered = await h.postBatch(n, [{ payload: { o: 1 }, orderingKey: 'k' }, { payload: { o: 2 }, orderingKey: 'k' }]);
      expect(ordered.status).toBe(202);
    }
    const of = (n: string) => app.deliveries.filter((d) => d.queue === n);
    await eventually(() => {
      for (const n of names) {
        const ds = of(n);
        expect(ds.some((d) => d.body.includes('delayed'))).toBe(true);
        expect(ds.filter((d) => d.body.includes('retry')).map((d) => d.attempt)).toEqual([1, 2]);
        expect(ds.filter((d) => d.body.includes('"o"')).map((d) => JSON.parse(d.body).o)).toEqual([1, 2]);
        expect(ds.filter((d) => d.body.includes('slow')).length).toBe(1);
        expect(new Set(ds.map((d) => d.id)).size).toBe(9);
      }
    }, { timeoutMs: 20_000, intervalMs: 100 });
    await eventually(async () => {
      for (const plan of plans) {
        const s = await h.feature.stats(plan);
        expect({ queue: plan.name, pending: s.pending, deadLetters: s.deadLetters, delayed: s.delayed, waiting: s.waiting })
          .toEqual({ queue: plan.name, pending: 0, deadLetters: 1, delayed: 0, waiting: 0 });
        // Retention: acknowledged history beyond maxLen is trimmed by the consumers.
        expect(s.length).toBeLessThanOrEqual(3);
      }
    }, { timeoutMs: 20_000, intervalMs: 200 });
    // A dead letter redriven goes back and is delivered again (attempt count restarts).
    const redrive = await fetch(`${h.api}/v1/queues/cl-a/dead-letters:redrive`, { method: 'POST', body: '{"perSecond": 100}' });
    expect(redrive.status).toBe(202);
    await eventually(() => expect(of('cl-a').filter((d) => d.body.includes('perm')).length).toBe(2), { timeoutMs: 15_000 });
  });

  it('the operator’s queue work (ensure group, stats, delete) on the cluster, through the same connection', async () => {
    const operator = connectRedis({ url: cluster.url, name: 'operator-task-queues', commandTimeoutMs: 1_000, connectTimeoutMs: 1_000 });
    stops.push(() => operator.disconnect());
    await waitReady(operator, 10_000);
    const plans = compilePlan(['cl-op-a', 'cl-op-b', 'cl-op-c', 'cl-op-d'].map((n) => taskQueueDoc(n))).taskQueues;
    for (const plan of plans) {
      expect(await ensureStreamAndGroup(operator, plan)).toBe('created');
      expect(await ensureStreamAndGroup(operator, plan)).toBe('exists');
      await operator.xadd(queueKeys(plan).stream, '*', 'p', 'x');
      expect(await queueStats(operator, plan)).toMatchObject({ length: 1, lag: 1, pending: 0 });
      expect(await deleteQueueData(operator, plan)).toBeGreaterThan(0);
      expect(await operator.exists(queueKeys(plan).stream)).toBe(0);
    }
  });

  it('a slot migration while limits are decided and tasks consumed: MOVED / ASK followed, nothing lost or counted twice', async () => {
    const name = 'cl-migrate';
    const doc = taskQueueDoc(name, { concurrency: 16 });
    const plan = compilePlan([doc]).taskQueues[0]!;
    const app = await WorkerApp.start(() => 200);
    stops.push(() => app.close());
    const h = await QueueHarness.start({ redisUrl: cluster.url, docs: [doc], appHttp: app.address });
    stops.push(() => h.close());
    const registry = new Registry();
    const [a, b] = limiters('cl-migrating-rule', 2, { requests: 10, per: '1h', burst: 10 }, 'Closed', registry);
    await waitReady(a!.redis, 10_000);
    await waitReady(b!.redis, 10_000);
    // Many partitions, so the rule's slot holds many keys and the migration takes a while.
    const partitions = Array.from({ length: 40 }, (_, i) => `p${i}`);

    const queueSlot = hashSlot(queueKeys(plan).stream);
    const ruleSlot = hashSlot(rateLimitBucketKey(a!.rule.id, 'p0'));
    const confirmed = new Set<string>();
    let producing = true;
    const producer = (async () => {
      for (let i = 0; producing; i++) {
        const r = await h.post(name, { i });
        if (r.status === 202 && r.json.id) confirmed.add(r.json.id);
      }
    })();
    const allowed = new Map<string, number>();
    let decided = 0;
    let deciding = true;
    const decider = (async () => {
      for (let i = 0; deciding; i++) {
        const l = (i % 2 === 0 ? a : b)!.limiter;
        const p = partitions[i % partitions.length] as string;
        if ((await l.consume(p, systemClock.now())).allowed) allowed.set(p, (allowed.get(p) ?? 0) + 1);
        decided++;
      }
    })();
    const redirectsBefore = await redirectReplies();
    // The loops stop whatever happens, so a failed assertion cannot leave them spinning.
    try {
      await eventually(() => expect(confirmed.size).toBeGreaterThan(20), { timeoutMs: 10_000 });
      // The target is another master (a node that serves slots), as a reshard would pick.
      const masters = new Set<number>();
      for (let s = 0; s < 16384; s += 512) masters.add((await cluster.masterOfSlot(s)).port);
      const pickTarget = async (slot: number) => {
        const from = await cluster.masterOfSlot(slot);
        const port = [...masters].find((p) => p !== from.port);
        return cluster.nodes.find((n) => n.port === port) as RedisServer;
      };
      const movedQueueKeys = await migrateSlot(queueSlot, await pickTarget(queueSlot), 100);
      const movedRuleKeys = await migrateSlot(ruleSlot, await pickTarget(ruleSlot), 20);
      expect(movedQueueKeys).toBeGreaterThan(0);
      expect(movedRuleKeys).toBeGreaterThan(10);
      await sleep(300);
    } finally {
      producing = false;
      deciding = false;
    }
    await Promise.all([producer, decider]);
    // The servers did redirect the clients (MOVED once a slot had moved, ASK for keys already
    // migrated while it moved): what follows shows the clients followed them.
    const redirectsAfter = await redirectReplies();
    expect(redirectsAfter.MOVED - redirectsBefore.MOVED).toBeGreaterThan(0);
    expect(redirectsAfter.ASK - redirectsBefore.ASK).toBeGreaterThan(0);

    // Every confirmed task is delivered; the stream holds all of them (none lost in the move).
    await eventually(() => {
      const delivered = new Set(app.deliveries.map((d) => d.id));
      expect([...confirmed].filter((id) => !delivered.has(id))).toEqual([]);
    }, { timeoutMs: 20_000, intervalMs: 200 });
    expect(await client.xlen(queueKeys(plan).stream)).toBeGreaterThanOrEqual(confirmed.size);
    // The limit is exact: 10 per partition, counted on Redis once each wherever its slot lives
    // (failure mode Closed: a decision that could not reach Redis is a refusal, never an extra
    // admission, so the only allowed shortfall is what fell back).
    const fell = await fallbacks(registry);
    expect(decided).toBeGreaterThan(partitions.length * 10);
    for (const p of partitions) expect([p, allowed.get(p) ?? 0]).toEqual([p, expect.any(Number)]);
    expect(Math.max(...partitions.map((p) => allowed.get(p) ?? 0))).toBeLessThanOrEqual(10);
    const total = [...allowed.values()].reduce((x, y) => x + y, 0);
    expect(total + fell).toBeGreaterThanOrEqual(partitions.length * 10);
  });

  it('a master killed under load: limits follow failureMode then recover, consumers resume, no Replicated task is lost', async () => {
    // A replicated queue, an async one and a rule all served by the master that is killed.
    const slotOf = (queue: string) => hashSlot(testQueueKeys(queue).stream);
    const victim = await cluster.masterOfSlot(slotOf('cl-replicated'));
    let asyncQueue = '';
    for (let i = 0; !asyncQueue; i++) if ((await cluster.masterOfSlot(slotOf(`cl-async-${i}`))) === victim) asyncQueue = `cl-async-${i}`;
    let rule = '';
    for (let i = 0; !rule; i++) {
      if ((await cluster.masterOfSlot(hashSlot(rateLimitBucketKey(globalRule(`cl-fo-${i}`, { requests: 1, per: '1s' }).id, 'k0')))) === victim) rule = `cl-fo-${i}`;
    }
    const r = await runFailoverLoad({
      url: cluster.url,
      replicatedQueue: 'cl-replicated',
      asyncQueue,
      rule,
      replicatedTarget: 4_000,
      kill: () => cluster.killMasterAndWaitForFailover(slotOf('cl-replicated'), 3),
    });
    console.log('cluster failover:', JSON.stringify({ ...r, asyncLostConfirmedBeforeKillMs: r.asyncLostConfirmedBeforeKillMs.slice(0, 20) }));
    expect(r.recovered).toBe(true);
    expect(r.sawRedisDown).toBe(true);
    expect(r.fallbacks).toBeGreaterThan(0);
    expect(r.replicatedConfirmed).toBeGreaterThanOrEqual(4_000);
    expect(r.replicatedLost).toBe(0);
    // Async: only what was confirmed just before the kill (not yet replicated) can be lost.
    for (const ms of r.asyncLostConfirmedBeforeKillMs) expect(ms).toBeLessThanOrEqual(CLUSTER_NODE_TIMEOUT_MS);
  }, 120_000);
});
