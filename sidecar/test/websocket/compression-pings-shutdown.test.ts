import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';

/** A real ws app that accepts permessage-deflate and records the size of every message it gets. */
async function startWsApp(onConnection?: (ws: WebSocket) => void): Promise<{ server: Server; wss: WebSocketServer; hostPort: string; sizes: number[]; extensions: string[] }> {
  const server = createServer((_req, res) => res.end('http ok'));
  const wss = new WebSocketServer({ server, perMessageDeflate: true, maxPayload: 64 * 1024 * 1024 });
  const sizes: number[] = [];
  const extensions: string[] = [];
  wss.on('connection', (ws, req) => {
    extensions.push(String(req.headers['sec-websocket-extensions'] ?? ''));
    ws.on('message', (data: Buffer) => sizes.push(data.length));
    onConnection?.(ws);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, wss, hostPort: `127.0.0.1:${(server.address() as AddressInfo).port}`, sizes, extensions };
}

let sc: RunningSidecar | undefined;
let app: Awaited<ReturnType<typeof startWsApp>> | undefined;
const clients: WebSocket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  await sc?.stop(100);
  sc = undefined;
  if (app) {
    for (const c of app.wss.clients) c.terminate();
    app.wss.close();
    app.server.closeAllConnections();
    await new Promise((r) => app!.server.close(r));
    app = undefined;
  }
});

const policy = (ws: string) => `
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: push, namespace: shop}
spec:
  selector: {}
  rules:
    - name: push-sockets
      match: {protocol: websocket}
      websocket: {${ws}}
`;

function open(url: string, opts: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, opts);
  clients.push(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}
const closed = (ws: WebSocket) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));

describe('WebSocket size and rate rules count what the app receives', () => {
  it('an 8 MiB message that deflates below maxMessageBytes never reaches the app', async () => {
    app = await startWsApp();
    sc = await startSidecar(policy('maxMessageBytes: 65536'), { appHttp: app.hostPort });
    const ws = await open(`${sc.url.replace('http', 'ws')}/ws`, { perMessageDeflate: true });
    const code = closed(ws);
    ws.send(Buffer.alloc(8 * 1024 * 1024)); // zeros: deflates to a few KiB
    expect([1009, 1002]).toContain(await code);
    await sleep(200);
    expect(app.sizes.every((n) => n <= 65536)).toBe(true);
    expect(app.sizes).toEqual([]);
    // The offer of compression was withdrawn from the handshake the app saw.
    expect(app.extensions).toEqual(['']);
  });

  it('without a size rule compression is negotiated end to end', async () => {
    app = await startWsApp((ws) => ws.on('message', (d: Buffer) => ws.send(d)));
    sc = await startSidecar(policy('messagesPerSecond: 1000'), { appHttp: app.hostPort });
    const ws = await open(`${sc.url.replace('http', 'ws')}/ws`, { perMessageDeflate: true });
    expect(ws.extensions).toContain('permessage-deflate');
    const echo = new Promise<number>((r) => ws.once('message', (d: Buffer) => r(d.length)));
    ws.send(Buffer.alloc(100_000));
    expect(await echo).toBe(100_000);
  });

  it("a client's pings count toward messagesPerSecond", async () => {
    app = await startWsApp();
    sc = await startSidecar(policy('messagesPerSecond: 5'), { appHttp: app.hostPort });
    const ws = await open(`${sc.url.replace('http', 'ws')}/ws`);
    const code = closed(ws);
    for (let i = 0; i < 200; i++) ws.ping();
    expect(await code).toBe(1008);
  });
});

describe('shutdown', () => {
  it('finishes when the app closed a WebSocket whose client socket was paused and never ended', async () => {
    let appSocket: Socket | undefined;
    app = await startWsApp((ws) => {
      appSocket = (ws as unknown as { _socket: Socket })._socket;
      // The app stops reading (the sidecar pauses the client under backpressure) and pushes more
      // than the client, which reads nothing, will ever take.
      appSocket.pause();
      for (let i = 0; i < 128; i++) ws.send(Buffer.alloc(256 * 1024));
    });
    sc = await startSidecar('', { appHttp: app.hostPort });
    const ws = await open(`${sc.url.replace('http', 'ws')}/ws`);
    const clientSocket = (ws as unknown as { _socket: Socket })._socket;
    clientSocket.pause(); // the client neither reads nor ends its side
    for (let i = 0; i < 64; i++) ws.send(Buffer.alloc(256 * 1024));
    await eventually(() => expect(appSocket).toBeDefined());
    await sleep(500);
    appSocket!.destroy(); // the app closes the connection
    await sleep(200);
    const stopped = sc.stop(100).then(() => 'stopped');
    sc = undefined;
    const outcome = await Promise.race([stopped, sleep(15_000).then(() => 'hung')]);
    expect(outcome).toBe('stopped');
  }, 30_000);
});
