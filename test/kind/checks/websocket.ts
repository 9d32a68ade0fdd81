/**
 * The push hub through its Service and sidecar, with Node's built-in WebSocket client. Runs in the
 * e2e client pod, fed on stdin:
 *
 *   kubectl exec -i -n sluice-e2e client -- node --input-type=module-typescript - \
 *     ws://push-hub.shop.svc.cluster.local/ws < test/kind/checks/websocket.ts
 *
 * 1. fan-out: six clients (spread over the replicas by the Service) subscribe to one channel; a
 *    message one of them publishes reaches all six, so it crossed replicas through Redis pub/sub;
 * 2. the leader's feed: a subscriber of `feed` receives messages carrying a fencing token (only
 *    the replica whose sidecar holds the LeaderElection sends them);
 * 3. the push-sockets limit: a client sending far over 20 messages/s is closed with 1008 by the
 *    sidecar.
 * Self-contained (node: modules and globals only): stdin scripts cannot import relative files.
 */
import { randomUUID } from 'node:crypto';

const url = process.argv[2] ?? 'ws://push-hub.shop.svc.cluster.local/ws';

interface HubMessage {
  type: string;
  channel?: string;
  data?: unknown;
  error?: string;
}

/** One hub client: every frame parsed and kept, waiters resolved as matching frames arrive. */
class HubClient {
  readonly ws: WebSocket;
  readonly received: HubMessage[] = [];
  closed: { code: number; reason: string } | undefined;
  private waiters: { match: (m: HubMessage) => boolean; resolve: (m: HubMessage) => void }[] = [];
  private closeWaiters: ((c: { code: number; reason: string }) => void)[] = [];

  constructor(target: string) {
    this.ws = new WebSocket(target);
    this.ws.addEventListener('message', (ev) => {
      const msg = JSON.parse(String(ev.data)) as HubMessage;
      this.received.push(msg);
      this.waiters = this.waiters.filter((w) => (w.match(msg) ? (w.resolve(msg), false) : true));
    });
    this.ws.addEventListener('close', (ev) => {
      this.closed = { code: ev.code, reason: ev.reason };
      for (const w of this.closeWaiters) w(this.closed);
    });
  }

  open(ms = 10_000): Promise<void> {
    return within(ms, 'connect', new Promise<void>((resolve, reject) => {
      this.ws.addEventListener('open', () => resolve());
      this.ws.addEventListener('error', () => reject(new Error(`cannot connect to ${url}`)));
    }));
  }

  next(match: (m: HubMessage) => boolean, what: string, ms = 10_000): Promise<HubMessage> {
    const seen = this.received.find(match);
    if (seen) return Promise.resolve(seen);
    return within(ms, what, new Promise((resolve) => this.waiters.push({ match, resolve })));
  }

  whenClosed(ms: number): Promise<{ code: number; reason: string }> {
    if (this.closed) return Promise.resolve(this.closed);
    return within(ms, 'close', new Promise((resolve) => this.closeWaiters.push(resolve)));
  }

  send(msg: object): void {
    this.ws.send(JSON.stringify(msg));
  }
}

function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const clients: HubClient[] = [];
try {
  // 1. Fan-out across replicas.
  const channel = `e2e-${randomUUID().slice(0, 8)}`;
  for (let i = 0; i < 6; i++) clients.push(new HubClient(url));
  await Promise.all(clients.map((c) => c.open()));
  for (const c of clients) c.send({ type: 'subscribe', channel });
  await Promise.all(clients.map((c) => c.next((m) => m.type === 'subscribed' && m.channel === channel, 'subscribed')));
  const payload = { hello: randomUUID() };
  clients[0]!.send({ type: 'publish', channel, data: payload });
  await Promise.all(clients.map((c, i) => c.next(
    (m) => m.type === 'message' && m.channel === channel && JSON.stringify(m.data) === JSON.stringify(payload),
    `the published message on client ${i}`,
  )));
  console.log(`ok: a message published on ${channel} reached all ${clients.length} subscribers`);

  // 2. The leader's feed, with its fencing token.
  const feed = clients[1]!;
  feed.send({ type: 'subscribe', channel: 'feed' });
  const tick = await feed.next((m) => m.type === 'message' && m.channel === 'feed', 'a feed message from the leader', 20_000);
  const token = (tick.data as { fencingToken?: unknown } | undefined)?.fencingToken;
  if (token === undefined || token === null) throw new Error(`feed message without a fencing token: ${JSON.stringify(tick)}`);
  console.log(`ok: the leader's feed arrives, fencing token ${String(token)}`);

  // 3. Message-rate abuse on one connection: closed with 1008 by the sidecar.
  const abuser = clients[2]!;
  for (let i = 0; i < 300 && abuser.ws.readyState === WebSocket.OPEN; i++) abuser.send({ type: 'publish', channel: `${channel}-abuse`, data: i });
  const closed = await abuser.whenClosed(10_000);
  if (closed.code !== 1008) throw new Error(`the abusive client was closed with ${closed.code} ${closed.reason}, expected 1008`);
  console.log(`ok: 300 messages at once closed the connection with 1008 (${closed.reason})`);
  // The others are unaffected: the limit is per connection.
  if (clients[0]!.closed) throw new Error(`a well-behaved client was closed too: ${JSON.stringify(clients[0]!.closed)}`);
} catch (err) {
  console.error(`FAIL ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  for (const c of clients) if (c.ws.readyState === WebSocket.OPEN) c.ws.close(1000);
  setTimeout(() => process.exit(), 500).unref();
}
