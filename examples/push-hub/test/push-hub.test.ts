import { connect, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/eventually.ts';
import { RedisServer } from '../../../test/helpers/redis-server.ts';
import { PushHub } from '../hub.ts';

let redis: RedisServer;
const hubs: PushHub[] = [];
const conns: Redis[] = [];
const sockets: (WebSocket | Socket)[] = [];

async function startHub(replica: string, opts: { pingIntervalMs?: number; maxBufferedBytes?: number } = {}): Promise<{ hub: PushHub; url: string }> {
  const pub = new Redis(redis.url);
  const sub = new Redis(redis.url);
  conns.push(pub, sub);
  const hub = new PushHub({ pub, sub, replica, ...opts });
  hubs.push(hub);
  const port = await hub.listen();
  return { hub, url: `ws://127.0.0.1:${port}/ws` };
}

interface TestClient {
  ws: WebSocket;
  messages: { type: string; channel?: string; data?: unknown; error?: string }[];
  send(msg: unknown): void;
}

async function client(url: string): Promise<TestClient> {
  const ws = new WebSocket(url);
  sockets.push(ws);
  const messages: TestClient['messages'] = [];
  ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, messages, send: (m) => ws.send(typeof m === 'string' ? m : JSON.stringify(m)) };
}

async function subscribed(c: TestClient, channel: string): Promise<void> {
  c.send({ type: 'subscribe', channel });
  await eventually(() => expect(c.messages).toContainEqual({ type: 'subscribed', channel }));
}

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  for (const s of sockets) {
    if (s instanceof WebSocket) s.terminate();
    else s.destroy();
  }
  for (const h of hubs) await h.close();
  for (const c of conns) c.disconnect();
  await redis.stop();
});

describe('push hub', () => {
  it('delivers to subscribers across two replicas through Redis pub/sub, and stops after unsubscribe', async () => {
    const a = await startHub('a');
    const b = await startHub('b');
    const onA = await client(a.url);
    const onB = await client(b.url);
    const publisher = await client(b.url);
    await subscribed(onA, 'prices');
    await subscribed(onB, 'prices');
    publisher.send({ type: 'publish', channel: 'prices', data: { eur: 1.08 } });
    for (const c of [onA, onB]) await eventually(() => expect(c.messages).toContainEqual({ type: 'message', channel: 'prices', data: { eur: 1.08 } }));
    expect(publisher.messages.filter((m) => m.type === 'message')).toHaveLength(0); // not subscribed
    onA.send({ type: 'unsubscribe', channel: 'prices' });
    await eventually(() => expect(onA.messages).toContainEqual({ type: 'unsubscribed', channel: 'prices' }));
    publisher.send({ type: 'publish', channel: 'prices', data: { eur: 1.09 } });
    await eventually(() => expect(onB.messages).toContainEqual({ type: 'message', channel: 'prices', data: { eur: 1.09 } }));
    expect(onA.messages.filter((m) => m.type === 'message')).toHaveLength(1);
  });

  it('answers bad input with an error and keeps the connection', async () => {
    const { url } = await startHub('c');
    const c = await client(url);
    c.send('not json');
    c.send({ type: 'subscribe', channel: 'bad channel name!' });
    c.send({ type: 'dance', channel: 'x' });
    await eventually(() => expect(c.messages.filter((m) => m.type === 'error')).toHaveLength(3));
    await subscribed(c, 'ok');
  });

  it('drops a dead peer that stops answering pings', async () => {
    const { hub, url } = await startHub('d', { pingIntervalMs: 150 });
    const raw = await rawUpgrade(url); // completes the handshake, then never answers a ping
    await eventually(() => expect(hub.clients).toBe(1));
    await eventually(() => expect(hub.stats.droppedDead).toBe(1), { timeoutMs: 5_000 });
    await eventually(() => expect(hub.clients).toBe(0));
    raw.destroy();
  });

  it('disconnects a slow client whose send buffer fills, without slowing the others', async () => {
    const { hub, url } = await startHub('e', { maxBufferedBytes: 256 * 1024 });
    const fast = await client(url);
    await subscribed(fast, 'firehose');
    const slow = await rawUpgrade(url, JSON.stringify({ type: 'subscribe', channel: 'firehose' }));
    await eventually(() => expect(hub.subscribers('firehose')).toBe(2));
    slow.pause(); // stop reading: the kernel buffers fill, then the hub's send buffer
    const chunk = 'x'.repeat(32 * 1024);
    for (let i = 0; i < 600; i++) await hub.publish('firehose', { i, chunk });
    await eventually(() => expect(hub.stats.droppedSlow).toBe(1), { timeoutMs: 15_000 });
    await eventually(() => expect(fast.messages.filter((m) => m.type === 'message')).toHaveLength(600), { timeoutMs: 15_000 });
    slow.destroy();
  });
});

/** A WebSocket client by hand: upgrade, optionally send one text frame, then do nothing at all. */
function rawUpgrade(url: string, firstMessage?: string): Promise<Socket> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname);
    sockets.push(sock);
    sock.on('error', () => {});
    sock.once('connect', () => sock.write(`GET ${u.pathname} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`));
    sock.once('data', (d) => {
      if (!d.toString().startsWith('HTTP/1.1 101')) return reject(new Error(d.toString()));
      if (firstMessage) {
        const payload = Buffer.from(firstMessage);
        const mask = Buffer.from([1, 2, 3, 4]);
        const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)));
        sock.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
      }
      resolve(sock);
    });
  });
}
