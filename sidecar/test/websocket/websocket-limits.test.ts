import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/eventually.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';

/** A real ws echo app that also records what it received. */
let server: Server;
let wss: WebSocketServer;
let appHostPort: string;
const received: Buffer[] = [];
beforeAll(async () => {
  server = createServer((_req, res) => res.end('http ok'));
  wss = new WebSocketServer({ server, maxPayload: 10 * 1024 * 1024 });
  wss.on('connection', (ws) => ws.on('message', (data: Buffer) => {
    received.push(data);
    ws.send(data);
  }));
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
  received.length = 0;
});

const policy = (ws: string) => `
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: push, namespace: shop}
spec:
  selector: {}
  rules:
    - name: push-sockets
      match:
        protocol: websocket
        paths: [{type: Exact, value: /ws}]
      websocket: {${ws}}
`;

function open(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  clients.push(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused ${res.statusCode}`), { status: res.statusCode, retryAfter: res.headers['retry-after'] })));
    ws.once('error', reject);
  });
}

const closed = (ws: WebSocket) => new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
const wsUrl = () => `${sc!.url.replace('http', 'ws')}/ws`;

describe('WebSocket proxying with limits', () => {
  it('echoes messages both ways and passes ping/pong through', async () => {
    sc = await startSidecar(policy('maxMessageBytes: 65536'), { appHttp: appHostPort });
    const ws = await open(wsUrl());
    const echo = new Promise<string>((r) => ws.once('message', (d) => r(d.toString())));
    ws.send('hello through sluice');
    expect(await echo).toBe('hello through sluice');
    const pong = new Promise<string>((r) => ws.once('pong', (d) => r(d.toString())));
    ws.ping('are-you-there');
    expect(await pong).toBe('are-you-there');
  });

  it('maxConnections: the upgrade past it is refused with 429 and Retry-After', async () => {
    sc = await startSidecar(policy('maxConnections: 2'), { appHttp: appHostPort });
    await open(wsUrl());
    const second = await open(wsUrl());
    await expect(open(wsUrl())).rejects.toMatchObject({ status: 429, retryAfter: expect.stringMatching(/^\d+$/) });
    second.close();
    await eventually(() => open(wsUrl()));
  });

  it('connectionsPerSecond: a burst of upgrades past it is refused with 429', async () => {
    sc = await startSidecar(policy('connectionsPerSecond: 3'), { appHttp: appHostPort });
    const started = performance.now();
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => open(wsUrl())));
    const refilled = Math.floor((3 * (performance.now() - started)) / 1000);
    const opened = results.filter((r) => r.status === 'fulfilled').length;
    expect(opened).toBeGreaterThanOrEqual(3);
    expect(opened).toBeLessThanOrEqual(3 + refilled); // the burst, plus what refilled while it ran
    for (const r of results.filter((r) => r.status === 'rejected')) expect((r as PromiseRejectedResult).reason.status).toBe(429);
  });

  it('messagesPerSecond: a client sending faster is closed with 1008, and the excess never reaches the app', async () => {
    sc = await startSidecar(policy('messagesPerSecond: 5'), { appHttp: appHostPort });
    const ws = await open(wsUrl());
    const started = performance.now();
    const done = closed(ws);
    for (let i = 0; i < 20; i++) ws.send(`m${i}`);
    expect((await done).code).toBe(1008);
    const refilled = Math.floor((5 * (performance.now() - started)) / 1000);
    expect(received.length).toBeLessThanOrEqual(5 + refilled);
  });

  it('maxMessageBytes: a message over it is closed with 1009 before it reaches the app', async () => {
    sc = await startSidecar(policy('maxMessageBytes: 1000'), { appHttp: appHostPort });
    const ws = await open(wsUrl());
    ws.send('x'.repeat(999));
    await eventually(() => expect(received).toHaveLength(1));
    const done = closed(ws);
    ws.send('y'.repeat(200_000));
    expect((await done).code).toBe(1009);
    expect(received).toHaveLength(1);
  });

  it('a message fragmented into small frames is judged by its whole size', async () => {
    sc = await startSidecar(policy('maxMessageBytes: 1000'), { appHttp: appHostPort });
    const ws = await open(wsUrl());
    const done = closed(ws);
    for (let i = 0; i < 5; i++) ws.send('z'.repeat(300), { fin: i === 4 });
    expect((await done).code).toBe(1009);
    expect(received).toHaveLength(0);
  });

  it('on shutdown, clients get 1012 Service Restart', async () => {
    sc = await startSidecar(policy('maxConnections: 100'), { appHttp: appHostPort });
    const a = await open(wsUrl());
    const b = await open(wsUrl());
    const closes = Promise.all([closed(a), closed(b)]);
    await sc.stop(500);
    sc = undefined;
    expect((await closes).map((c) => c.code)).toEqual([1012, 1012]);
  });

  it('a non-websocket upgrade is refused with 400', async () => {
    sc = await startSidecar(policy('maxConnections: 100'), { appHttp: appHostPort });
    const { rawRequest, statusOf } = await import('../../../test/helpers/raw-http.ts');
    const raw = await rawRequest(Number(new URL(sc.url).port), ['GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n']);
    expect(statusOf(raw)).toBe(400);
  });
});
