import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import WebSocket, { WebSocketServer } from 'ws';

/**
 * The classic real-time push hub: clients subscribe to channels and publish to them; every
 * replica fans messages out through Redis pub/sub, so a client connected to replica A receives
 * what a client on replica B published. Dead peers are found by ping/pong and dropped; a client
 * too slow to drain its send buffer is disconnected instead of holding everyone back.
 *
 * Client → hub:  {"type":"subscribe","channel":"c"} | {"type":"unsubscribe","channel":"c"}
 *                | {"type":"publish","channel":"c","data":<any JSON>}
 * Hub → client:  {"type":"message","channel":"c","data":...} | {"type":"error","error":"..."}
 */
export interface HubOptions {
  /** Two connections: one to publish, one in subscriber mode (Redis requires its own). */
  pub: Redis;
  sub: Redis;
  replica: string;
  pingIntervalMs?: number;
  /** A client whose unsent data exceeds this is disconnected (1013, "try again later"). */
  maxBufferedBytes?: number;
  maxChannelsPerClient?: number;
}

const PREFIX = 'pushhub:';
const CHANNEL = /^[\w.:-]{1,128}$/;

interface Client {
  ws: WebSocket;
  channels: Set<string>;
  alive: boolean;
}

export class PushHub {
  readonly server: Server;
  readonly wss: WebSocketServer;
  readonly replica: string;
  private readonly opts: Required<Omit<HubOptions, 'pub' | 'sub' | 'replica'>>;
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly channels = new Map<string, Set<Client>>();
  private readonly connected = new Map<WebSocket, Client>();
  private readonly heartbeat: NodeJS.Timeout;
  readonly stats = { delivered: 0, droppedSlow: 0, droppedDead: 0 };

  constructor(opts: HubOptions) {
    this.pub = opts.pub;
    this.sub = opts.sub;
    this.replica = opts.replica;
    this.opts = { pingIntervalMs: opts.pingIntervalMs ?? 15_000, maxBufferedBytes: opts.maxBufferedBytes ?? 1 << 20, maxChannelsPerClient: opts.maxChannelsPerClient ?? 100 };
    this.server = createServer((req, res) => {
      if (req.url === '/healthz') return void res.end('ok');
      res.writeHead(404).end();
    });
    this.wss = new WebSocketServer({ server: this.server, path: '/ws', maxPayload: 64 * 1024 });
    this.wss.on('connection', (ws) => this.onConnection(ws));
    this.sub.on('pmessage', (_pattern: string, redisChannel: string, payload: string) => this.deliver(redisChannel.slice(PREFIX.length), payload));
    this.heartbeat = setInterval(() => this.ping(), this.opts.pingIntervalMs);
    this.heartbeat.unref();
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<number> {
    await this.sub.psubscribe(`${PREFIX}*`);
    await new Promise<void>((resolve) => this.server.listen(port, host, resolve));
    return (this.server.address() as AddressInfo).port;
  }

  /** Publishes to every subscriber of `channel` on every replica. */
  async publish(channel: string, data: unknown): Promise<void> {
    await this.pub.publish(PREFIX + channel, JSON.stringify({ type: 'message', channel, data }));
  }

  subscribers(channel: string): number {
    return this.channels.get(channel)?.size ?? 0;
  }

  get clients(): number {
    return this.wss.clients.size;
  }

  private onConnection(ws: WebSocket): void {
    const client: Client = { ws, channels: new Set(), alive: true };
    this.connected.set(ws, client);
    ws.on('pong', () => {
      client.alive = true;
    });
    ws.on('message', (raw) => this.onMessage(client, raw.toString()));
    ws.on('close', () => {
      this.connected.delete(ws);
      for (const ch of client.channels) this.leave(client, ch);
    });
    ws.on('error', () => ws.terminate());
  }

  private onMessage(client: Client, raw: string): void {
    let msg: { type?: unknown; channel?: unknown; data?: unknown };
    try {
      msg = JSON.parse(raw) as typeof msg;
    } catch {
      return this.send(client, { type: 'error', error: 'messages are JSON objects' });
    }
    const channel = msg.channel;
    if (typeof channel !== 'string' || !CHANNEL.test(channel)) return this.send(client, { type: 'error', error: 'channel must match [\\w.:-]{1,128}' });
    switch (msg.type) {
      case 'subscribe':
        if (client.channels.size >= this.opts.maxChannelsPerClient) return this.send(client, { type: 'error', error: 'too many channels' });
        client.channels.add(channel);
        if (!this.channels.has(channel)) this.channels.set(channel, new Set());
        this.channels.get(channel)!.add(client);
        return this.send(client, { type: 'subscribed', channel });
      case 'unsubscribe':
        this.leave(client, channel);
        return this.send(client, { type: 'unsubscribed', channel });
      case 'publish':
        this.publish(channel, msg.data).catch(() => this.send(client, { type: 'error', error: 'publish failed: Redis unavailable' }));
        return;
      default:
        return this.send(client, { type: 'error', error: 'type must be subscribe, unsubscribe or publish' });
    }
  }

  private leave(client: Client, channel: string): void {
    client.channels.delete(channel);
    const set = this.channels.get(channel);
    set?.delete(client);
    if (set?.size === 0) this.channels.delete(channel);
  }

  /** Fan-out of one message: serialised once, sent to each local subscriber. */
  private deliver(channel: string, payload: string): void {
    const set = this.channels.get(channel);
    if (!set) return;
    for (const client of set) {
      if (client.ws.readyState !== WebSocket.OPEN) continue;
      if (client.ws.bufferedAmount > this.opts.maxBufferedBytes) {
        this.dropSlow(client);
        continue;
      }
      client.ws.send(payload);
      this.stats.delivered++;
    }
  }

  private dropSlow(client: Client): void {
    this.stats.droppedSlow++;
    for (const ch of client.channels) this.leave(client, ch);
    client.ws.close(1013, 'slow consumer');
    // A client too slow to read is unlikely to read the close frame either.
    setTimeout(() => client.ws.terminate(), 1_000).unref();
  }

  private send(client: Client, msg: unknown): void {
    if (client.ws.readyState === WebSocket.OPEN) client.ws.send(JSON.stringify(msg));
  }

  /** A peer that did not answer the previous ping is gone: drop it. */
  private ping(): void {
    for (const client of this.connected.values()) {
      if (!client.alive) {
        this.stats.droppedDead++;
        client.ws.terminate();
        continue;
      }
      client.alive = false;
      client.ws.ping();
    }
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const ws of this.wss.clients) ws.close(1001, 'hub shutting down');
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
