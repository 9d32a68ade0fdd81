import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import WebSocket, { WebSocketServer } from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/eventually.ts';
import { RedisServer } from '../../../test/helpers/redis-server.ts';
import { spawnSidecar, type SidecarProcess } from '../../../test/helpers/sidecar-process.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';
import { connectRedis, waitReady } from '../../../lib/redis/connection.ts';
import { connectionsKey } from '../../../lib/redis/key-layout.ts';

/*
 * A Global maxConnectionsPerKey: sidecars share one count per key in a real redis-server, and the
 * slots of a sidecar that dies come back when their leases run out.
 */
const CONFIG = (failureMode = 'Open') => `
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: push, namespace: shop}
spec:
  selector: {}
  rules:
    - name: per-user
      match: {protocol: websocket, paths: [{type: Exact, value: /ws}]}
      scope: Global
      failureMode: ${failureMode}
      websocket: {maxConnectionsPerKey: 2, key: {source: Header, name: x-user}}
`;
const RULE = 'shop/push/per-user';

let redis: RedisServer;
let client: Redis;
let server: Server;
let appHostPort: string;
beforeAll(async () => {
  redis = await RedisServer.start();
  client = connectRedis({ url: redis.url, name: 'test' });
  await waitReady(client);
  server = createServer((_req, res) => res.end('ok'));
  new WebSocketServer({ server }).on('connection', (ws) => ws.on('message', (d: Buffer) => ws.send(d)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  appHostPort = `127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 30_000);
afterAll(async () => {
  client.disconnect();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await redis.stop();
});

const clients: WebSocket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  await client.flushall();
});

function open(base: string, user: string): Promise<WebSocket> {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`, { headers: { 'x-user': user } });
  clients.push(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused ${res.statusCode}`), { status: res.statusCode, retryAfter: res.headers['retry-after'] })));
    ws.once('error', reject);
  });
}
/** A sidecar decides without Redis until its connection is up (failureMode): tests start after. */
async function started(sc: Promise<RunningSidecar>): Promise<RunningSidecar> {
  const running = await sc;
  await waitReady(running.sidecar.globalLimits!.redis);
  return running;
}
async function processReady(p: SidecarProcess): Promise<void> {
  await eventually(async () => {
    const r = (await (await fetch(`${p.admin}/readyz`)).json()) as { checks: { name: string; details?: { state?: string } }[] };
    expect(r.checks.find((c) => c.name === 'redis')?.details?.state).toBe('ready');
  });
}
const refused = { status: 429, retryAfter: expect.stringMatching(/^[1-9]\d*$/) };

describe('Global maxConnectionsPerKey across two sidecars', () => {
  let a: RunningSidecar;
  let b: RunningSidecar;
  afterEach(async () => {
    await Promise.all([a?.stop(200), b?.stop(200)]);
  });

  it('one user\'s connections are counted across both; another user is admitted; a close frees the slot for either sidecar', async () => {
    a = await started(startSidecar(CONFIG(), { appHttp: appHostPort, redis: redis.url }));
    b = await started(startSidecar(CONFIG(), { appHttp: appHostPort, redis: redis.url }));
    const onA = await open(a.url, 'alice');
    await open(b.url, 'alice');
    await expect(open(a.url, 'alice')).rejects.toMatchObject(refused);
    await expect(open(b.url, 'alice')).rejects.toMatchObject(refused);
    expect(await client.zcard(connectionsKey(RULE, 'alice'))).toBe(2);
    await open(a.url, 'bob');
    await open(b.url, 'bob');
    await expect(open(b.url, 'bob')).rejects.toMatchObject(refused);

    onA.close();
    await eventually(() => open(b.url, 'alice'));
    await expect(open(a.url, 'alice')).rejects.toMatchObject(refused);
    // Every key of the rule lives in one hash slot, as the rate-limit keys do.
    expect(connectionsKey(RULE, 'alice')).toMatch(/^sluice:ws:\{shop\/push\/per-user\}:alice$/);
  });

  it('shutdown gives the slots back at once, so drained clients find them free elsewhere', async () => {
    a = await started(startSidecar(CONFIG(), { appHttp: appHostPort, redis: redis.url, websocketDrainWindowMs: 200 }));
    b = await started(startSidecar(CONFIG(), { appHttp: appHostPort, redis: redis.url }));
    const both = [await open(a.url, 'carol'), await open(a.url, 'carol')];
    const codes = both.map((ws) => new Promise<number>((r) => ws.once('close', r)));
    await a.stop(2_000);
    expect(await Promise.all(codes)).toEqual([1012, 1012]);
    expect(await client.zcard(connectionsKey(RULE, 'carol'))).toBe(0);
    await open(b.url, 'carol');
    await open(b.url, 'carol');
  });
});

describe('while Redis does not answer (SIGSTOP)', () => {
  let sc: RunningSidecar | undefined;
  afterEach(async () => {
    redis.resume();
    await sc?.stop(200);
    sc = undefined;
  });

  it('failureMode Open counts in this sidecar against the same quota; the connections are registered once Redis is back', async () => {
    sc = await started(startSidecar(CONFIG('Open'), { appHttp: appHostPort, redis: redis.url, websocketQuotaLeaseMs: 300 }));
    redis.pause();
    await open(sc.url, 'erin');
    await open(sc.url, 'erin');
    await expect(open(sc.url, 'erin')).rejects.toMatchObject(refused);
    redis.resume();
    await eventually(async () => expect(await client.zcard(connectionsKey(RULE, 'erin'))).toBe(2));
  });

  it('failureMode Closed refuses upgrades with 429 and Retry-After', async () => {
    sc = await started(startSidecar(CONFIG('Closed'), { appHttp: appHostPort, redis: redis.url }));
    await open(sc.url, 'frank');
    redis.pause();
    await expect(open(sc.url, 'frank')).rejects.toMatchObject(refused);
    await expect(open(sc.url, 'grace')).rejects.toMatchObject(refused);
    redis.resume();
    await eventually(() => open(sc!.url, 'grace'));
  });
});

describe('a sidecar that dies', () => {
  let dir: string;
  let procs: SidecarProcess[] = [];
  afterEach(() => {
    for (const p of procs) p.kill('SIGKILL');
    procs = [];
    rmSync(dir, { recursive: true, force: true });
  });

  it('leaves its connections\' slots held only until their lease runs out', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-ws-quota-'));
    const config = join(dir, 'sluice.yaml');
    writeFileSync(config, CONFIG());
    procs = await Promise.all(['a', 'b'].map((id) => spawnSidecar([
      '--config', config, '--app-http', appHostPort, '--redis', redis.url, '--id', `ws-${id}-${process.pid}`,
      '--websocket-quota-lease', '1s', '--log-level', 'warn',
    ])));
    const [pa, pb] = procs as [SidecarProcess, SidecarProcess];
    await Promise.all(procs.map(processReady));
    await open(pa.http, 'dave');
    await open(pa.http, 'dave');
    await expect(open(pb.http, 'dave')).rejects.toMatchObject(refused);

    // Renewals keep the slots held well past one lease while the sidecar lives.
    await new Promise((r) => setTimeout(r, 1_500));
    await expect(open(pb.http, 'dave')).rejects.toMatchObject(refused);

    pa.kill('SIGKILL');
    await pa.exited;
    await eventually(() => open(pb.http, 'dave'), { timeoutMs: 15_000, intervalMs: 100 });
    await open(pb.http, 'dave');
    await expect(open(pb.http, 'dave')).rejects.toMatchObject(refused);
  }, 60_000);
});
