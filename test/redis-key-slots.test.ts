import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../lib/clock.ts';
import { compilePlan } from '../lib/policy/index.ts';
import {
  appLockResource, electionResource, fenceKey, hashSlot, legacyQueueKeys, lockKey, queueKeys, rateLimitBucketKey, rateLimitPresenceKey,
} from '../lib/redis/key-layout.ts';
import { deleteQueueData, ensureStreamAndGroup, queueStats } from '../operator/src/task-queue/queue-redis.ts';
import { AppLocks } from '../sidecar/src/leader/app-locks.ts';
import { RedLock } from '../sidecar/src/leader/redlock.ts';
import { ReleaseNotifier } from '../sidecar/src/leader/release-notifier.ts';
import { GCRA, HEARTBEAT, SLIDING_WINDOW } from '../sidecar/src/limit/global/scripts.ts';
import { connectRedis, waitReady } from '../lib/redis/connection.ts';
import { QueueHarness, taskQueueDoc, testQueueKeys } from '../sidecar/test/queue/helpers/queue-harness.ts';
import { mixedOutcomes, WorkerApp } from '../sidecar/test/queue/helpers/worker-app.ts';
import { eventually, sleep } from './helpers/eventually.ts';
import { RedisServer } from './helpers/redis-server.ts';

/**
 * Redis Cluster refuses a script or a multi-key command whose keys live in different slots. This
 * test runs what Sluice does in Redis — producing, delivering, retrying, dead-lettering, delaying,
 * reclaiming, trimming, ordering keys, dead-letter redrive and retention, queue stats, the operator's ensure/stats/delete, global limit decisions
 * and heartbeats, locks — against a real server under MONITOR, then asks Redis itself for the keys
 * of every command it saw (COMMAND GETKEYS, including the commands a script ran) and for their
 * slots (CLUSTER KEYSLOT, on a node started with --cluster-enabled yes).
 */
let server: RedisServer;
let clusterNode: RedisServer;

beforeAll(async () => {
  [server, clusterNode] = await Promise.all([RedisServer.start(), RedisServer.start({ cluster: true })]);
});
afterAll(async () => {
  await Promise.all([server?.stop(), clusterNode?.stop()]);
});

interface Seen {
  readonly args: string[];
  readonly lua: boolean;
}

async function slotsOf(node: Redis, keys: readonly string[]): Promise<number[]> {
  const p = node.pipeline();
  for (const k of keys) p.call('CLUSTER', 'KEYSLOT', k);
  return ((await p.exec()) ?? []).map(([err, v]) => {
    if (err) throw err;
    return Number(v);
  });
}

async function keysOf(client: Redis, seen: readonly Seen[]): Promise<string[][]> {
  const p = client.pipeline();
  for (const s of seen) p.call('COMMAND', 'GETKEYS', ...s.args);
  // A command without keys (TIME, PING, SCRIPT LOAD…) makes GETKEYS fail: it has no keys.
  return ((await p.exec()) ?? []).map(([err, v]) => (err ? [] : (v as string[])));
}

describe('every script and multi-key command touches one slot', () => {
  it('CLUSTER KEYSLOT agrees with the layout module’s own slot computation', async () => {
    const node = new Redis(clusterNode.url);
    try {
      const keys = [
        ...queueKeys({ namespace: 'shop', stream: 'orders', deadLetterStream: 'orders.dlq' }).all,
        ...queueKeys({ namespace: 'a-b', stream: 'x/y:z%é', deadLetterStream: 'd' }).all,
        rateLimitBucketKey('shop/api/per-ip', '10.0.0.1'), rateLimitPresenceKey('shop/api/per-ip'),
        lockKey(appLockResource('shop', 'we}ird{')), fenceKey(appLockResource('shop', 'we}ird{')), lockKey(electionResource('shop', 'leader')),
        'no-tag', '{}empty', 'a{b}c{d}',
      ];
      expect(await slotsOf(node, keys)).toEqual(keys.map(hashSlot));
      // All keys of one queue, one rule, one lock: one slot each.
      for (const group of [
        queueKeys({ namespace: 'a-b', stream: 'x/y:z%é', deadLetterStream: 'd' }).all,
        [rateLimitBucketKey('shop/api/per-ip', '10.0.0.1'), rateLimitBucketKey('shop/api/per-ip', ''), rateLimitPresenceKey('shop/api/per-ip')],
        [lockKey(appLockResource('shop', 'we}ird{')), fenceKey(appLockResource('shop', 'we}ird{'))],
      ]) expect(new Set(await slotsOf(node, group)).size).toBe(1);
    } finally {
      node.disconnect();
    }
  });

  it('holds for what the sidecar and the operator actually send', async () => {
    const client = new Redis(server.url);
    const monitor = await new Redis(server.url).monitor();
    const node = new Redis(clusterNode.url);
    const seen: Seen[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => seen.push({ args, lua: source === 'lua' }));
    const stops: (() => unknown)[] = [() => client.disconnect(), () => monitor.disconnect()];
    try {
      // ── queues: produce every shape, deliver, retry, dead-letter, refresh a slow task, trim ──
      const app = await WorkerApp.start(mixedOutcomes);
      stops.push(() => app.close());
      const doc = taskQueueDoc('slots', { visibilityTimeout: '1s', retention: { maxLen: 3 }, deadLetter: { stream: 'test.slots.dlq', maxLen: 10, maxAge: '1h' } });
      const plan = compilePlan([doc]).taskQueues[0]!;
      const h = await QueueHarness.start({ redisUrl: server.url, docs: [doc], appHttp: app.address, deps: { legacySweepMs: 200 } });
      stops.push(() => h.close());
      await h.post('slots', { n: 1 });
      await h.post('slots', { n: 2 }, { 'idempotency-key': 'k' });
      await h.post('slots', { n: 2 }, { 'idempotency-key': 'k' });
      await h.post('slots', { n: 3 }, { 'sluice-delay': '300ms' });
      await h.postBatch('slots', [{ payload: { fail: 'retry' } }, { payload: { fail: 'perm' } }, { payload: { slow: true } }, { payload: 'x', contentType: 'text/plain' }]);
      await eventually(async () => expect(app.deliveries.length).toBeGreaterThanOrEqual(7), { timeoutMs: 15_000 });
      await eventually(async () => expect(await client.xlen(testQueueKeys('slots').deadLetter!)).toBe(1), { timeoutMs: 15_000 });
      // The slow task outlives the visibility timeout: its claim is refreshed until it is acked.
      await eventually(async () => expect((await h.feature.stats(plan)).pending).toBe(0), { timeoutMs: 15_000 });
      // ── ordering keys (in line, released on ack, a delayed one joining when due) and a redrive ──
      await h.postBatch('slots', [{ payload: { o: 1 }, orderingKey: 'k' }, { payload: { o: 2 }, orderingKey: 'k' }, { payload: { o: 3 }, orderingKey: 'k', delay: '200ms' }]);
      await eventually(async () => expect(app.deliveries.filter((d) => d.body.includes('"o"')).length).toBe(3), { timeoutMs: 15_000 });
      const redrive = await fetch(`${h.api}/v1/queues/slots/dead-letters:redrive`, { method: 'POST', body: '{"perSecond": 100}' });
      expect(redrive.status).toBe(202);
      await eventually(async () => expect(((await (await fetch(`${h.api}/v1/queues/slots/dead-letters:redrive`)).json()) as { state: string }).state).toBe('done'), { timeoutMs: 15_000 });
      await sleep(1_200); // a dead-letter retention pass
      // ── operator ──
      await ensureStreamAndGroup(client, plan);
      await queueStats(client, plan);
      // ── global limits ──
      await GCRA.run(client, [rateLimitBucketKey('shop/api/r', 'p')], [1000, 10, 10, 1, 1]);
      await SLIDING_WINDOW.run(client, [rateLimitBucketKey('shop/api/s', 'p')], [1000, 10, 10, 1, 1]);
      await HEARTBEAT.run(client, [rateLimitPresenceKey('shop/api/r')], ['me', 3000]);
      // ── locks (this server as a lock node) ──
      const lockNode = connectRedis({ url: server.url, name: 'lock-node', commandTimeoutMs: 1_000 });
      const sub = connectRedis({ url: server.url, name: 'lock-node-events' });
      stops.push(() => lockNode.disconnect(), () => sub.disconnect());
      await waitReady(lockNode);
      const locks = new AppLocks({ lock: new RedLock([lockNode], systemClock), notifier: new ReleaseNotifier([sub]), clock: systemClock, holderId: 'me', namespace: 'shop' });
      const held = await locks.acquire('orders', 5_000);
      await locks.extend('orders', held.lockId, 6_000);
      await locks.release('orders', held.lockId);
      // ── and deletion last ──
      await h.close();
      await deleteQueueData(client, plan);
      await sleep(200);
    } finally {
      for (const s of stops.reverse()) await Promise.resolve().then(s).catch(() => {});
    }

    const reader = new Redis(server.url);
    const keys = await keysOf(reader, seen).finally(() => reader.disconnect());
    const legacy = new Set(Object.values(legacyQueueKeys(compilePlan([taskQueueDoc('slots')]).taskQueues[0]!)).filter((k): k is string => typeof k === 'string'));
    const problems: string[] = [];
    let scriptSlot: number | undefined;
    let scriptExempt = false;
    let scripts = 0;
    let multi = 0;
    for (let i = 0; i < seen.length; i++) {
      const s = seen[i]!;
      const ks = keys[i]!;
      const slots = await slotsOf(node, ks);
      const name = s.args[0]!.toLowerCase();
      if (!s.lua) {
        const isScript = name === 'eval' || name === 'evalsha';
        // The migration is the one exemption: its scripts move version-1 keys (one server only) to version 2.
        scriptExempt = isScript && ks.some((k) => legacy.has(k) || k.startsWith('sluice:tq:{'));
        scriptSlot = isScript ? slots[0] : undefined;
        if (isScript) scripts++;
        if (ks.length > 1 && !isScript) multi++;
        if (!scriptExempt && new Set(slots).size > 1) problems.push(`${s.args.slice(0, 6).join(' ').slice(0, 200)} → slots ${slots.join(',')}`);
      } else if (!scriptExempt) {
        for (const sl of slots) if (sl !== scriptSlot) problems.push(`inside a script: ${s.args.slice(0, 4).join(' ')} → slot ${sl}, script declared ${scriptSlot}`);
      }
    }
    node.disconnect();
    expect(problems).toEqual([]);
    // The run exercised what it claims to: many scripts, their inner commands, and multi-key commands (DEL).
    expect(scripts).toBeGreaterThan(20);
    expect(seen.filter((s) => s.lua).length).toBeGreaterThan(50);
    expect(multi).toBeGreaterThan(0);
    const inScripts = new Set(seen.filter((s) => s.lua).map((s) => s.args[0]!.toLowerCase()));
    for (const command of ['xautoclaim', 'xclaim', 'xack', 'zadd', 'hset', 'xadd', 'zrangebyscore', 'publish']) expect([command, inScripts.has(command)]).toEqual([command, true]);
  });
});
