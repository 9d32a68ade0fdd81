import * as grpc from '@grpc/grpc-js';
import { Redis as RedisClient } from 'ioredis';
import WebSocket from 'ws';
import type { LiveSnapshot } from '../../sidecar/src/admin/live-page.ts';
import type { FeedMessage } from '../push-hub/broadcaster.ts';
import { queueKeys } from '../../lib/redis/key-layout.ts';
import { postOrders } from '../order-worker/producer.ts';
import { userAdminClient, userServiceClient, type UserServiceClient } from '../user-service/user-service.ts';
import type { Processes } from './processes.ts';
import { startSidecar, type Sidecar, type Stack } from './stack.ts';

/** What a scene needs: the running stack, how to talk, how long to let the reader read. */
export interface SceneContext {
  stack: Stack;
  procs: Processes;
  say(text: string): void;
  /** A pause for the reader (zero in fast mode). */
  pause(): Promise<void>;
  /** Every WebSocket and gRPC client a scene opens, closed on shutdown. */
  closers: (() => void)[];
}

export const BREAKER_RULE = 'shop/user-api/backend';
export const LIMIT_RULE = 'shop/user-api/get-user-rpc';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function live(sidecar: Sidecar): Promise<LiveSnapshot | undefined> {
  try {
    const res = await fetch(`${sidecar.admin}/v1/live`, { signal: AbortSignal.timeout(1_000) });
    return res.ok ? ((await res.json()) as LiveSnapshot) : undefined;
  } catch {
    return undefined;
  }
}

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function grpcClient(ctx: SceneContext): UserServiceClient {
  const client = userServiceClient(ctx.stack.userService.sidecar.grpc);
  ctx.closers.push(() => client.close());
  return client;
}

const getUser = (c: UserServiceClient, id: string) =>
  new Promise<grpc.ServiceError | null>((resolve) => c.GetUser({ id }, { deadline: Date.now() + 5_000 }, (err) => resolve(err)));

const listUsers = (c: UserServiceClient) =>
  new Promise<grpc.ServiceError | undefined>((resolve) => {
    const stream = c.ListUsers({ limit: 3 }, { deadline: Date.now() + 5_000 });
    let failed: grpc.ServiceError | undefined;
    stream.on('data', () => {});
    stream.on('error', (err: grpc.ServiceError) => (failed = err));
    stream.on('status', () => resolve(failed));
  });

function setBehavior(ctx: SceneContext, failCode: number): Promise<void> {
  const admin = userAdminClient(`127.0.0.1:${ctx.stack.userService.port}`);
  return new Promise((resolve, reject) => admin.SetBehavior({ failCode, delayMs: 0 }, (err) => {
    admin.close();
    if (err) reject(err);
    else resolve();
  }));
}

/** 1. GetUser past the Global limit, and a WebSocket client over its message rate. */
export async function rateLimits(ctx: SceneContext): Promise<{ admitted: number; limited: number }> {
  const { say } = ctx;
  say('\n1. Rate limits');
  say('   GetUser ×5200 through the user-service sidecar, 50 at a time');
  say('   (get-user-rpc: 5000 per sliding minute, scope Global: counted in Redis for every selected pod)');
  const client = grpcClient(ctx);
  const codes = new Map<string, number>();
  let pushback = 0;
  let next = 0;
  await Promise.all(Array.from({ length: 50 }, async () => {
    while (next < 5_200) {
      const err = await getUser(client, String(next++ % 100));
      const name = err ? (grpc.status[err.code] ?? String(err.code)) : 'OK';
      codes.set(name, (codes.get(name) ?? 0) + 1);
      if (err?.code === grpc.status.RESOURCE_EXHAUSTED) pushback = Math.max(pushback, Number(err.metadata.get('grpc-retry-pushback-ms')[0] ?? 0));
    }
  }));
  const admitted = codes.get('OK') ?? 0;
  const limited = codes.get('RESOURCE_EXHAUSTED') ?? 0;
  const other = [...codes].filter(([k]) => k !== 'OK' && k !== 'RESOURCE_EXHAUSTED').map(([k, n]) => `${k} ${n}`);
  say(`   admitted ${admitted} · limited ${limited} (RESOURCE_EXHAUSTED with grpc-retry-pushback-ms, up to ${pushback})${other.length ? ` · other: ${other.join(', ')}` : ''}`);
  await ctx.pause();

  const hub = ctx.stack.pushHub[0]!.sidecar;
  say(`   a WebSocket client of ${hub.id} sends 60 messages at once (push-sockets: 20 per second per connection)`);
  const ws = new WebSocket(`ws://127.0.0.1:${hub.ports.http}/ws`);
  ctx.closers.push(() => ws.terminate());
  ws.on('error', () => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  for (let i = 0; i < 60; i++) ws.send(JSON.stringify({ type: 'subscribe', channel: `spam-${i}` }));
  const { code, reason } = await closed;
  say(`   a second's burst (20) passes, then the sidecar closes the connection: ${code} (${reason})`);
  await ctx.pause();
  return { admitted, limited };
}

/** 2. The app fails, the breaker opens, the app heals, half-open probes close it. */
export async function circuitBreaker(ctx: SceneContext): Promise<{ opened: boolean; closed: boolean }> {
  const { say } = ctx;
  const sidecar = ctx.stack.userService.sidecar;
  const state = async () => (await live(sidecar))?.circuits[BREAKER_RULE]?.state ?? 'closed';
  say('\n2. Circuit breaker (backend: 5 failures in a row open it for openDuration 3s; 3 half-open probes close it)');
  say('   the app is told to fail every call with UNAVAILABLE (UserAdmin/SetBehavior, straight to the app)');
  await setBehavior(ctx, grpc.status.UNAVAILABLE);
  const client = grpcClient(ctx);
  let fromApp = 0;
  let fromCircuit = 0;
  for (let i = 0; i < 10; i++) {
    const err = await listUsers(client);
    if (err?.details?.includes('SLUICE_ERR_CIRCUIT_OPEN')) fromCircuit++;
    else if (err) fromApp++;
  }
  say(`   ListUsers ×10: ${fromApp} × UNAVAILABLE from the app, then ${fromCircuit} × UNAVAILABLE from the open circuit (the app is not called)`);
  const afterTrip = await state();
  say(`   circuit: ${afterTrip}`);
  await ctx.pause();

  say('   the app is healthy again (failCode 0); the circuit stays open for openDuration…');
  await setBehavior(ctx, 0);
  const rejected = await listUsers(client);
  say(`   a call right away: ${rejected ? `${grpc.status[rejected.code]} (circuit still open)` : 'OK'}`);
  await sleep(3_100);
  const seen: string[] = [];
  for (let i = 0; i < 6; i++) {
    const err = await listUsers(client);
    const s = await state();
    seen.push(`${err ? grpc.status[err.code] : 'OK'} → ${s}`);
    if (s === 'closed') break;
  }
  say(`   after 3s, one call at a time: ${seen.join(', ')}`);
  const end = await state();
  say(`   circuit: ${end}`);
  await ctx.pause();
  return { opened: afterTrip === 'open', closed: end === 'closed' };
}

interface FeedClient {
  ws: WebSocket;
  feed: FeedMessage[];
}

async function feedClient(ctx: SceneContext, sidecar: Sidecar): Promise<FeedClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${sidecar.ports.http}/ws`);
  ctx.closers.push(() => ws.terminate());
  const c: FeedClient = { ws, feed: [] };
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString()) as { type: string; channel?: string; data?: FeedMessage };
    if (m.type === 'message' && m.channel === 'feed' && m.data) c.feed.push(m.data);
  });
  ws.on('error', () => {});
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'subscribe', channel: 'feed' }));
  return c;
}

/** 3. Kill -9 the broadcasting replica's sidecar: the other replica leads, with a higher fencing token. */
export async function leaderFailover(ctx: SceneContext): Promise<{ from: string; fromToken: number; to: string; toToken: number }> {
  const { say } = ctx;
  const hubs = ctx.stack.pushHub;
  say('\n3. Leader election (push-broadcaster: RedLock over 3 Redis lock nodes, ttl 4s, renewed every 1s)');
  say(`   two push-hub replicas; only the leader's broadcaster publishes the feed; one client on each replica's sidecar`);
  const clients = await Promise.all(hubs.map((h) => feedClient(ctx, h.sidecar)));
  const first = await until('the first feed message', async () => clients[0]!.feed[0] ?? clients[1]!.feed[0], 20_000);
  const leaderIndex = hubs.findIndex((h) => h.sidecar.id === first.from);
  if (leaderIndex < 0) throw new Error(`feed from an unknown sender ${first.from}`);
  const leader = hubs[leaderIndex]!;
  const other = hubs[1 - leaderIndex]!;
  const fromToken = first.fencingToken as number;
  await until('the feed on both clients', async () => (clients.every((c) => c.feed.length >= 2) ? true : undefined), 10_000);
  const senders = new Set(clients.flatMap((c) => c.feed.map((m) => m.from)));
  say(`   leader: ${leader.name} (fencing token ${fromToken}) — its feed reaches the clients of both replicas (senders seen: ${[...senders].join(', ')})`);
  await ctx.pause();

  say(`   kill -9 ${leader.name}'s sidecar (pid ${leader.sidecar.child.pid}): it cannot release the lease, which runs out within ttl`);
  const killedAt = Date.now();
  await ctx.procs.stop(leader.sidecar.child, 'SIGKILL');
  const survivor = clients[1 - leaderIndex]!;
  const taken = await until('the new leader\'s feed', async () => survivor.feed.find((m) => m.from === other.sidecar.id), 20_000);
  const toToken = taken.fencingToken as number;
  say(`   leader changed: ${leader.name} (token ${fromToken}) → ${other.name} (token ${toToken}) after ${((Date.now() - killedAt) / 1000).toFixed(1)}s; the feed goes on from ${other.name}`);
  say(`   ${leader.name}'s app still runs, but cannot confirm leadership without its sidecar, so it stopped broadcasting`);
  await ctx.pause();

  const slot = ctx.stack.sidecars.indexOf(leader.sidecar);
  leader.sidecar = await startSidecar(ctx.procs, leader.sidecar);
  ctx.stack.sidecars[slot] = leader.sidecar;
  const l = await until('the restarted sidecar to see the leader', async () => {
    const s = (await live(leader.sidecar))?.elections[0];
    return s?.holder ? s : undefined;
  }, 10_000);
  say(`   ${leader.name}'s sidecar restarted (pid ${leader.sidecar.child.pid}): it follows ${l.holder} (token ${l.fencingToken})`);
  for (const c of clients) c.ws.close();
  await ctx.pause();
  return { from: leader.name, fromToken, to: other.name, toToken };
}

/** 4. Orders through the TaskQueue: most succeed, some are retried after a 503, qty 0 is dead-lettered. */
export async function taskQueue(ctx: SceneContext, failRate: number): Promise<{ completed: number; retried: number; dead: number }> {
  const { say } = ctx;
  const ow = ctx.stack.orderWorker.sidecar;
  say('\n4. Task queue (orders: Redis stream shop.orders, 5 attempts, backoff 1s → 2s → …, dead letters in shop.orders.dlq)');
  say(`   30 orders posted to the order-worker sidecar's local API; 3 have qty 0 (the worker answers 422: permanent),`);
  say(`   and the worker answers ${Math.round(failRate * 100)} % of first attempts 503 "warehouse busy" (transient: retried after backoff)`);
  await postOrders({ sidecar: ow.localApi, orders: 30, invalid: 3 });
  const tasks = await until('all 30 orders to settle', async () => {
    const t = (await live(ow))?.queues.orders?.tasks;
    return t && (t.acked ?? 0) + (t.dead_lettered ?? 0) >= 30 ? t : undefined;
  }, 45_000);
  const completed = tasks.acked ?? 0;
  const retried = tasks.retried ?? 0;
  const dead = tasks.dead_lettered ?? 0;
  say(`   tasks: completed ${completed} · retried ${retried} · dead-lettered ${dead}`);
  const redis = new RedisClient(ctx.stack.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const dlq = queueKeys({ namespace: 'shop', stream: 'shop.orders', deadLetterStream: 'shop.orders.dlq' }).deadLetter!;
    const [entry] = await redis.xrange(dlq, '-', '+', 'COUNT', 1);
    if (entry) {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < entry[1].length; i += 2) f[entry[1][i] as string] = entry[1][i + 1] as string;
      say(`   a dead letter: task ${f.originalId} after ${f.attempts} attempt(s): ${f.error}${f.cause ? ` (${f.cause})` : ''}`);
    }
  } finally {
    redis.disconnect();
  }
  await ctx.pause();
  return { completed, retried, dead };
}

/** Sums a counter of a sidecar's /metrics by one label, over the series whose labels include every `where`. */
async function counterBy(sidecar: Sidecar, metric: string, by: string, ...where: string[]): Promise<Map<string, number>> {
  const text = await (await fetch(`${sidecar.admin}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(new RegExp(`^${metric}\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
    const labels = m[1] as string;
    if (!where.every((w) => labels.includes(w))) continue;
    const key = new RegExp(`${by}="([^"]*)"`).exec(labels)?.[1] ?? '';
    out.set(key, (out.get(key) ?? 0) + Number(m[2]));
  }
  return out;
}

export interface ServiceToServiceResult {
  orders: number;
  /** GetUser calls that failed: the order API answered 503 USER_LOOKUP_FAILED. */
  failed: number;
  /** Answers other than 202 that were not a failed lookup (the queue side). */
  other: number;
  /** Successful GetUser calls per replica, in stack order: in all, before the kill, after it. */
  perReplica: { name: string; calls: number; before: number; after: number }[];
  retries: number;
  killed: string;
}

/**
 * 5. The order API checks each order's customer with the user-service through its sidecar's
 * Upstream: one loopback port, calls spread per request over three replicas; one replica is
 * killed under load, and no lookup fails.
 */
export async function serviceToService(ctx: SceneContext, orders = 900): Promise<ServiceToServiceResult> {
  const { say } = ctx;
  const { orderApi, userReplicas } = ctx.stack;
  const victim = userReplicas[userReplicas.length - 1]!;
  const where = 'upstream="shop/user-service"';
  say('\n5. Service to service (Upstream user-service: the order API dials one loopback port, its sidecar picks a replica per call)');
  say(`   ${userReplicas.length} user-service replicas (${userReplicas.map((r) => `${r.name} :${r.port}`).join(', ')}); the order API looks up each order's customer`);
  say(`   with GetUser at ${orderApi.upstream} before queueing it — ${orders} orders, 16 at a time; ${victim.name} is killed (kill -9) a third of the way in`);
  const beforeOk = await counterBy(orderApi.sidecar, 'sluice_outbound_tries_total', 'endpoint', where, 'outcome="ok"');
  const retriesBefore = (await counterBy(orderApi.sidecar, 'sluice_outbound_retries_total', 'upstream', where)).get('shop/user-service') ?? 0;
  let next = 0;
  let answered = 0;
  let failed = 0;
  let other = 0;
  let killing: Promise<Map<string, number>> | undefined;
  const firstFailures: string[] = [];
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < orders) {
      const i = next++;
      const res = await fetch(`http://127.0.0.1:${orderApi.port}/orders`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ orderId: `s2s-${Date.now().toString(36)}-${i}`, sku: `SKU-${(i % 7) + 1}`, qty: 1, customerId: String(i % 100) }),
      });
      const body = (await res.json()) as { code?: string; error?: string };
      if (res.status === 503 && body.code === 'USER_LOOKUP_FAILED') {
        failed++;
        if (firstFailures.length < 3) firstFailures.push(body.error ?? '');
      } else if (res.status !== 202) other++;
      if (++answered === Math.floor(orders / 3)) {
        // What each replica had answered when the kill came, then the kill.
        killing = counterBy(orderApi.sidecar, 'sluice_outbound_tries_total', 'endpoint', where, 'outcome="ok"').then(async (m) => {
          await ctx.procs.stop(victim.app, 'SIGKILL');
          return m;
        });
      }
    }
  }));
  const atKill = (await killing) ?? beforeOk;
  const afterOk = await counterBy(orderApi.sidecar, 'sluice_outbound_tries_total', 'endpoint', where, 'outcome="ok"');
  const retries = ((await counterBy(orderApi.sidecar, 'sluice_outbound_retries_total', 'upstream', where)).get('shop/user-service') ?? 0) - retriesBefore;
  const perReplica = userReplicas.map((r) => {
    const ep = `127.0.0.1:${r.port}`;
    const at = atKill.get(ep) ?? 0;
    const start = beforeOk.get(ep) ?? 0;
    const end = afterOk.get(ep) ?? 0;
    return { name: r.name, calls: end - start, before: at - start, after: end - at };
  });
  const beforeTotal = perReplica.reduce((a, r) => a + r.before, 0) || 1;
  say(`   orders ${orders}: customer looked up and order queued ${orders - failed - other} · failed lookups (unary GetUser) ${failed}${other ? ` · other answers ${other}` : ''}`);
  for (const f of firstFailures) say(`     e.g. ${f}`);
  say(`   GetUser answered per replica, before the kill: ${perReplica.map((r) => `${r.name} ${r.before} (${Math.round((100 * r.before) / beforeTotal)} %)`).join(' · ')}`);
  say(`                                  after the kill: ${perReplica.map((r) => `${r.name} ${r.after}`).join(' · ')}`);
  say(`   calls that were on ${victim.name} or reached it after the kill were retried on another replica: ${retries} retries (budget: 20 % of calls + 10/s)`);
  await ctx.pause();
  return { orders, failed, other, perReplica, retries, killed: victim.name };
}

/** Light traffic while the demo stays up, so the page keeps moving. */
export function backgroundTraffic(ctx: SceneContext): () => void {
  const client = grpcClient(ctx);
  let n = 0;
  let stopped = false;
  const tick = async () => {
    while (!stopped) {
      n++;
      await Promise.all(Array.from({ length: 20 }, (_, i) => getUser(client, String(i))));
      if (n % 2 === 0) {
        const id = `bg-${n}`;
        await fetch(`${ctx.stack.orderWorker.sidecar.localApi}/v1/queues/orders/tasks`, {
          method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': id },
          body: JSON.stringify({ orderId: id, sku: 'SKU-1', qty: n % 10 === 0 ? 0 : 1 }),
        }).then((r) => r.arrayBuffer()).catch(() => {});
      }
      await sleep(1_000);
    }
  };
  void tick();
  return () => {
    stopped = true;
  };
}

/** One line of the live state of every sidecar, for the terminal. */
export async function statusLine(stack: Stack): Promise<string> {
  const [us, a, b, ow] = await Promise.all(stack.sidecars.map((s) => live(s)));
  const rl = us?.rateLimits[LIMIT_RULE] ?? {};
  const circuit = us?.circuits[BREAKER_RULE]?.state ?? '?';
  const elections = [a, b].flatMap((s) => s?.elections ?? []);
  const leader = elections.find((e) => e.leader);
  const t = ow?.queues.orders?.tasks ?? {};
  return `GetUser admitted ${rl.allowed ?? 0} limited ${rl.limited ?? 0} · circuit ${circuit} · leader ${leader ? `${leader.holder} token ${leader.fencingToken}` : 'none'} · orders completed ${t.acked ?? 0} retried ${t.retried ?? 0} dead-lettered ${t.dead_lettered ?? 0}`;
}
