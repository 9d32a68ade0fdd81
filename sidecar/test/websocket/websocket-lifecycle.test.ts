import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';

/**
 * The life of proxied WebSocket connections: per-key connection quotas, heartbeats that find dead
 * clients, and the staggered 1012 drain on shutdown. A real ws app behind real in-process sidecars,
 * real ws clients.
 */
let server: Server;
let wss: WebSocketServer;
let appHostPort: string;
/** Pong payloads the app received (it must see only the answers to its own pings). */
const appPongs: string[] = [];
const appConnections: WebSocket[] = [];
beforeAll(async () => {
  server = createServer((_req, res) => res.end('http ok'));
  wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => {
    appConnections.push(ws);
    ws.on('pong', (d: Buffer) => appPongs.push(d.toString()));
    ws.on('message', (data: Buffer) => ws.send(data));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  appHostPort = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const c of wss.clients) c.terminate();
  wss.close();
  await new Promise((r) => server.close(r));
});

let sc: RunningSidecar | undefined;
const clients: WebSocket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  await sc?.stop(100);
  sc = undefined;
  appPongs.length = 0;
  appConnections.length = 0;
});

const policy = (ws: string, extra = '') => `
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: push, namespace: shop}
spec:
  selector: {}
  rules:
    - name: push-sockets
      match: {protocol: websocket, paths: [{type: Exact, value: /ws}]}
      websocket: {${ws}}${extra}
`;

type Refusal = Error & { status?: number; retryAfter?: string };

function open(opts: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(`${sc!.url.replace('http', 'ws')}/ws`, opts);
  clients.push(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused ${res.statusCode}`), { status: res.statusCode, retryAfter: res.headers['retry-after'] })));
    ws.once('error', reject);
  });
}

const as = (user: string): WebSocket.ClientOptions => ({ headers: { 'x-user': user } });
const closed = (ws: WebSocket) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
const refused = { status: 429, retryAfter: expect.stringMatching(/^[1-9]\d*$/) };

describe('maxConnectionsPerKey', () => {
  it('keyed by a header: one user is refused at its quota while another is admitted; a slot frees when a connection ends', async () => {
    sc = await startSidecar(policy('maxConnectionsPerKey: 2, key: {source: Header, name: x-user}'), { appHttp: appHostPort });
    const a1 = await open(as('alice'));
    await open(as('alice'));
    await expect(open(as('alice'))).rejects.toMatchObject(refused);
    await open(as('bob'));
    await open(as('bob'));
    await expect(open(as('bob'))).rejects.toMatchObject(refused);
    a1.close();
    await eventually(() => open(as('alice')));
    await expect(open(as('alice'))).rejects.toMatchObject(refused);
  });

  it('a reload that changes the quota keeps counting the connections already open', async () => {
    sc = await startSidecar(policy('maxConnectionsPerKey: 2, key: {source: Header, name: x-user}'), { appHttp: appHostPort });
    await open(as('alice'));
    await open(as('alice'));
    sc.writeConfig(policy('maxConnectionsPerKey: 3, key: {source: Header, name: x-user}'));
    await sc.sidecar.reloadConfig();
    await open(as('alice'));
    await expect(open(as('alice'))).rejects.toMatchObject(refused);
  });

  it('keyed by the remote address (the default): 127.0.0.1 at its quota, 127.0.0.2 still admitted', async () => {
    sc = await startSidecar(policy('maxConnectionsPerKey: 1'), { appHttp: appHostPort });
    await open({ localAddress: '127.0.0.1' });
    await expect(open({ localAddress: '127.0.0.1' })).rejects.toMatchObject(refused);
    const other = await open({ localAddress: '127.0.0.2' });
    expect(other.readyState).toBe(WebSocket.OPEN);
  });
});

describe('heartbeats', () => {
  const beating = { websocketPingIntervalMs: 150, websocketPingTimeoutMs: 300 };

  it('a client that stops answering pings is closed and its slot freed; a live one stays, its pongs never reach the app or count as messages', async () => {
    sc = await startSidecar(policy('maxConnectionsPerKey: 1, messagesPerSecond: 1, key: {source: Header, name: x-user}'), { appHttp: appHostPort, ...beating });
    const mute = await open({ ...as('mute'), autoPong: false });
    const live = await open(as('live'));
    let livePings = 0;
    live.on('ping', () => livePings++);
    const muteClosed = closed(mute);
    await expect(open(as('mute'))).rejects.toMatchObject(refused);

    // Dead within interval + timeout (+ a sweep); generous for a loaded machine.
    expect(await Promise.race([muteClosed, sleep(10_000).then(() => 'still open')])).toBe(1006);
    await eventually(() => open(as('mute')));
    await eventually(() => expect(livePings).toBeGreaterThanOrEqual(3));

    // Several of the sidecar's pings answered, at one message a second allowed: still open.
    expect(live.readyState).toBe(WebSocket.OPEN);
    const echo = new Promise<string>((r) => live.once('message', (d) => r(d.toString())));
    live.send('still here');
    expect(await echo).toBe('still here');
    expect(appPongs).toEqual([]);

    // The app's own pings are answered to the app as before.
    const appSide = appConnections[1]!;
    const pong = new Promise<string>((r) => appSide.once('pong', (d: Buffer) => r(d.toString())));
    appSide.ping('app-ping');
    expect(await pong).toBe('app-ping');
    expect(appPongs).toEqual(['app-ping']);
    const m = await (await fetch(`${sc.admin}/metrics`)).text();
    expect(m).toMatch(/^sluice_websocket_ping_timeouts_total [1-9]/m);
  });

  it('--websocket-ping-interval 0 sends no pings', async () => {
    sc = await startSidecar(policy('maxConnections: 10'), { appHttp: appHostPort, websocketPingIntervalMs: 0 });
    const ws = await open({ autoPong: false });
    let pings = 0;
    ws.on('ping', () => pings++);
    await sleep(500);
    expect(pings).toBe(0);
    expect(ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe('staggered drain', () => {
  it('closes clients with 1012 spread over the drain window, refusing new upgrades meanwhile', async () => {
    const windowMs = 1_500;
    sc = await startSidecar(policy('maxConnections: 100'), { appHttp: appHostPort, websocketDrainWindowMs: windowMs });
    const ws = await Promise.all(Array.from({ length: 6 }, () => open()));
    const closes = ws.map((c) => new Promise<{ code: number; at: number }>((resolve) => c.once('close', (code) => resolve({ code, at: performance.now() }))));
    const started = performance.now();
    const stopping = sc.stop(4_000);
    const running = sc;
    sc = undefined;
    await expect(new Promise((resolve, reject) => {
      const late = new WebSocket(`${running.url.replace('http', 'ws')}/ws`);
      clients.push(late);
      late.once('open', () => resolve('opened'));
      late.once('unexpected-response', (_req, res) => reject(Object.assign(new Error('refused'), { status: res.statusCode })));
      late.once('error', reject);
    })).rejects.toBeDefined();
    const results = await Promise.all(closes);
    await stopping;
    expect(results.map((r) => r.code)).toEqual(Array(6).fill(1012));
    const at = results.map((r) => r.at - started).sort((x, y) => x - y);
    // Evenly spread, the six closes are 250 ms apart (0 … 1250 ms): not all in one slice...
    expect(at[5]! - at[0]!).toBeGreaterThan(windowMs / 3);
    // ...and all within the window, plus slack for a loaded machine.
    expect(at[5]!).toBeLessThan(windowMs + 2_000);
  });

  it('the app can start it through the local API (POST /v1/websocket/drain), answered once the last close is sent', async () => {
    sc = await startSidecar(policy('maxConnections: 100'), { appHttp: appHostPort, websocketDrainWindowMs: 600, shutdownGraceMs: 2_000 });
    const ws = await Promise.all(Array.from({ length: 3 }, () => open()));
    const codes = Promise.all(ws.map(closed));
    const started = performance.now();
    const res = await fetch(`${sc.localApi}/v1/websocket/drain`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ drained: 3, windowMs: 600 });
    // Closes at 0, 200 and 400 ms: the answer waits for the last one.
    expect(performance.now() - started).toBeGreaterThan(300);
    expect(await codes).toEqual([1012, 1012, 1012]);
    await expect(open()).rejects.toMatchObject({ status: 503 });
    // The sidecar's own shutdown later finds nothing left to drain.
    await sc.stop(500);
    sc = undefined;
  });
});
