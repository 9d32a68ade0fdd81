import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/eventually.ts';
import { freePort } from '../../../lib/net.ts';
import { RedisServer, startRedisServers } from '../../../test/helpers/redis-server.ts';
import { spawnSidecar, type SidecarProcess } from '../../../test/helpers/sidecar-process.ts';
import type { FeedMessage } from '../broadcaster.ts';

/**
 * The push hub as it runs in production: replicas of `main.ts`, each behind its own real
 * `sluice-proxy` process started with examples/push-hub/sluice.yaml (the `push-sockets` limits and
 * the `push-broadcaster` LeaderElection over three independent Redis lock nodes), clients connected
 * through the sidecars' /ws. Exactly one replica broadcasts the feed; when its sidecar dies another
 * replica takes over, and its messages carry a higher fencing token.
 */
const MAIN = fileURLToPath(new URL('../main.ts', import.meta.url));
const CONFIG = fileURLToPath(new URL('../sluice.yaml', import.meta.url));

interface Replica {
  name: string;
  id: string;
  sidecar: SidecarProcess;
  app: ChildProcess;
  appLogs(): string;
  /** The hub's /ws through the sidecar. */
  ws: string;
}

interface Client {
  ws: WebSocket;
  messages: { type: string; channel?: string; data?: unknown; error?: string }[];
  feed(): FeedMessage[];
  closed: Promise<{ code: number; reason: string }>;
}

let lockNodes: RedisServer[];
let pubsub: RedisServer;
const replicas: Replica[] = [];
const clients: Client[] = [];

async function startReplica(name: string, sidecarArgs: string[] = []): Promise<Replica> {
  const appPort = await freePort();
  const id = `push-hub-${name}`;
  const sidecar = await spawnSidecar([
    '--config', CONFIG, '--labels', 'app=push-hub', '--app-http', `127.0.0.1:${appPort}`,
    '--lock-nodes', lockNodes.map((n) => n.url).join(','), '--id', id, '--log-level', 'warn', ...sidecarArgs,
  ]);
  const app = spawn(process.execPath, [MAIN], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PORT: String(appPort), REDIS_URL: pubsub.url, REPLICA: name, SLUICE_LOCAL_API: sidecar.localApi, FEED_EVERY_MS: '200' },
  });
  let logs = '';
  app.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
  app.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
  const replica: Replica = { name, id, sidecar, app, appLogs: () => logs, ws: `ws://127.0.0.1:${sidecar.ports.http}/ws` };
  replicas.push(replica);
  await eventually(async () => {
    expect(app.exitCode, logs).toBeNull();
    expect((await fetch(`http://127.0.0.1:${appPort}/healthz`)).status).toBe(200);
  }, { timeoutMs: 20_000, intervalMs: 100 });
  return replica;
}

async function connect(url: string): Promise<Client> {
  const ws = new WebSocket(url);
  const messages: Client['messages'] = [];
  ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const client: Client = {
    ws, messages, closed,
    feed: () => messages.filter((m) => m.type === 'message' && m.channel === 'feed').map((m) => m.data as FeedMessage),
  };
  clients.push(client);
  return client;
}

async function subscribeFeed(url: string): Promise<Client> {
  const c = await connect(url);
  c.ws.send(JSON.stringify({ type: 'subscribe', channel: 'feed' }));
  await eventually(() => expect(c.messages).toContainEqual({ type: 'subscribed', channel: 'feed' }));
  return c;
}

async function leadership(r: Replica): Promise<{ leader: boolean; holder?: string; fencingToken?: number }> {
  return (await fetch(`${r.sidecar.localApi}/v1/leadership/push-broadcaster`)).json() as Promise<{ leader: boolean; holder?: string; fencingToken?: number }>;
}

beforeAll(async () => {
  [lockNodes, pubsub] = await Promise.all([startRedisServers(3), RedisServer.start()]);
});

afterAll(async () => {
  for (const c of clients) c.ws.terminate();
  await Promise.all(replicas.map(async (r) => {
    for (const p of [r.app, r.sidecar.proc]) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      const exited = new Promise((resolve) => p.once('exit', resolve));
      p.kill('SIGKILL');
      await exited;
    }
  }));
  await Promise.all([...(lockNodes ?? []), pubsub].filter(Boolean).map((s) => s.stop()));
});

describe('push hub replicas behind sluice-proxy: the leader-only broadcaster fails over', () => {
  let a: Replica;
  let b: Replica;
  let leader: Replica;
  let follower: Replica;
  let firstToken: number;

  it('exactly one replica broadcasts the feed, and clients of both replicas receive it', async () => {
    [a, b] = await Promise.all([startReplica('a'), startReplica('b')]);
    const [onA, onB] = await Promise.all([subscribeFeed(a.ws), subscribeFeed(b.ws)]);
    await eventually(() => {
      expect(onA.feed().length).toBeGreaterThanOrEqual(5);
      expect(onB.feed().length).toBeGreaterThanOrEqual(5);
    }, { timeoutMs: 20_000 });

    const senders = new Set([...onA.feed(), ...onB.feed()].map((m) => m.from));
    expect(senders.size).toBe(1);
    const [from] = senders;
    leader = from === a.id ? a : b;
    follower = leader === a ? b : a;
    expect(from).toBe(leader.id);
    expect(onA.feed().every((m) => m.replica === leader.name)).toBe(true);

    const [ls, fs] = await Promise.all([leadership(leader), leadership(follower)]);
    expect(ls).toMatchObject({ leader: true, holder: leader.id });
    expect(fs).toMatchObject({ leader: false, holder: leader.id, fencingToken: ls.fencingToken });
    firstToken = ls.fencingToken as number;
    expect(new Set(onA.feed().map((m) => m.fencingToken))).toEqual(new Set([firstToken]));
    expect(leader.appLogs()).toContain('leading: broadcasting the feed');
    expect(follower.appLogs()).not.toContain('leading: broadcasting the feed');
  }, 60_000);

  it('SIGKILL of the leader\'s sidecar: the other replica takes over when the lease runs out, with a higher fencing token', async () => {
    const survivor = await subscribeFeed(follower.ws);
    const behindDead = await subscribeFeed(leader.ws);
    leader.sidecar.kill('SIGKILL');
    await leader.sidecar.exited;
    // The client connected through the dead sidecar lost its connection with it.
    await behindDead.closed;

    // ttl is 10s: the standby waits for the lease to run out (it was not released).
    const fromNew = await eventually(() => {
      const m = survivor.feed().find((x) => x.from === follower.id);
      expect(m).toBeDefined();
      return m as FeedMessage;
    }, { timeoutMs: 25_000, intervalMs: 100 });
    expect(fromNew.replica).toBe(follower.name);
    expect(fromNew.fencingToken).toBeGreaterThan(firstToken);

    // The old replica's app still runs, but without its sidecar it cannot know it leads: it stopped.
    const count = survivor.feed().length;
    await eventually(() => expect(survivor.feed().length).toBeGreaterThanOrEqual(count + 5), { timeoutMs: 10_000 });
    const after = survivor.feed().slice(survivor.feed().indexOf(fromNew));
    expect(after.every((m) => m.from === follower.id && m.fencingToken === fromNew.fencingToken)).toBe(true);
    expect(leader.app.exitCode).toBeNull();
    expect(follower.appLogs()).toContain('leading: broadcasting the feed');
    firstToken = fromNew.fencingToken as number;
  }, 60_000);

  it('SIGTERM of the leader\'s sidecar releases the lease: a standby takes over with a higher token', async () => {
    const c = await startReplica('c');
    const onC = await subscribeFeed(c.ws);
    await eventually(async () => expect(await leadership(c)).toMatchObject({ leader: false, holder: follower.id }), { timeoutMs: 15_000 });

    follower.sidecar.kill('SIGTERM');
    expect(await follower.sidecar.exited).toEqual({ code: 0, signal: null });

    const fromC = await eventually(() => {
      const m = onC.feed().find((x) => x.from === c.id);
      expect(m).toBeDefined();
      return m as FeedMessage;
    }, { timeoutMs: 15_000, intervalMs: 50 });
    expect(fromC.fencingToken).toBeGreaterThan(firstToken);
    expect(await leadership(c)).toMatchObject({ leader: true, holder: c.id, fencingToken: fromC.fencingToken });
    // Tokens seen by this client never go down.
    const tokens = onC.feed().map((m) => m.fencingToken as number);
    expect(tokens).toEqual([...tokens].sort((x, y) => x - y));
  }, 60_000);

  it('push-sockets: a client sending more than 20 messages a second is closed with 1008; others keep their feed', async () => {
    const c = replicas.find((r) => r.name === 'c') as Replica;
    const calm = await subscribeFeed(c.ws);
    const noisy = await connect(c.ws);
    for (let i = 0; i < 60; i++) noisy.ws.send(JSON.stringify({ type: 'subscribe', channel: `spam-${i}` }));
    expect((await noisy.closed).code).toBe(1008);
    // A second's burst went through to the hub before the limit closed the connection.
    expect(noisy.messages.filter((m) => m.type === 'subscribed').length).toBeLessThan(60);
    const count = calm.feed().length;
    await eventually(() => expect(calm.feed().length).toBeGreaterThan(count + 2));
    expect(calm.ws.readyState).toBe(WebSocket.OPEN);
    const metrics = await (await fetch(`${c.sidecar.admin}/metrics`)).text();
    expect(metrics).toMatch(/sluice_websocket_closes_total\{code="1008"\} 1/);
  });

  it('SIGTERM of a hub (as Kubernetes stops the app before its sidecar): its clients get 1012, spread over the drain window', async () => {
    const d = await startReplica('d', ['--websocket-drain-window', '1s']);
    const onD = await Promise.all([connect(d.ws), connect(d.ws), connect(d.ws)]);
    const at = onD.map((c) => c.closed.then((r) => ({ code: r.code, at: performance.now() })));
    const started = performance.now();
    const exited = new Promise((resolve) => d.app.once('exit', resolve));
    d.app.kill('SIGTERM');
    const closes = await Promise.all(at);
    expect(closes.map((c) => c.code)).toEqual([1012, 1012, 1012]);
    const times = closes.map((c) => c.at - started).sort((x, y) => x - y);
    // Closes due at 0, 333 and 667 ms: spread, and within the window plus slack.
    expect(times[2]! - times[0]!).toBeGreaterThan(300);
    expect(times[2]!).toBeLessThan(1_000 + 3_000);
    expect(await exited).toBe(0);
  }, 60_000);
});
