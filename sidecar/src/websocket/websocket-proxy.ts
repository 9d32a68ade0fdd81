import { request, STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Clock } from '../../../lib/clock.ts';
import { answerAndClose } from '../http/client-errors.ts';
import { connectionTokens, isHopByHop } from '../http/hop-by-hop.ts';
import { HttpRequestAttributes } from '../http/request-attributes.ts';
import type { Logger } from '../log.ts';
import type { SidecarMetrics } from '../metrics.ts';
import { isRejection, type Permit, type PolicyEngine, type Rejection, type WebSocketAdmission } from '../policy-engine/engine.ts';
import { httpRejection, WS_CLOSE } from '../policy-engine/responses.ts';
import { closeFrame, FrameInspector } from './frame-inspector.ts';

interface Connection {
  client: Socket;
  app: Socket;
  /** Tracks app→client frame boundaries so a close frame is never spliced into a frame. */
  toClient: FrameInspector;
}

/**
 * Proxies WebSocket upgrades to the app and enforces the `websocket` limits. The handshake is
 * forwarded with node:http; after 101 the two sockets are joined by hand rather than piped,
 * because every client→server chunk passes the FrameInspector (message rate and size, close
 * 1008/1009) and shutdown must be able to send 1001 at a frame boundary.
 */
export class WebSocketProxy {
  private readonly engine: PolicyEngine;
  private readonly appHost: string;
  private readonly appPort: number;
  private readonly metrics: SidecarMetrics;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly handshakeTimeoutMs: number;
  private readonly connections = new Set<Connection>();
  private closing = false;

  constructor(opts: { engine: PolicyEngine; appHttp: string; metrics: SidecarMetrics; logger: Logger; clock: Clock; handshakeTimeoutMs?: number }) {
    this.engine = opts.engine;
    const [host, port] = splitHostPort(opts.appHttp);
    this.appHost = host;
    this.appPort = port;
    this.metrics = opts.metrics;
    this.logger = opts.logger;
    this.clock = opts.clock;
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 10_000;
  }

  get open(): number {
    return this.connections.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (this.closing) return answerAndClose(socket, 503);
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      this.metrics.clientErrors.labels('websocket', '400').inc();
      return answerAndClose(socket, 400);
    }
    const attrs = new HttpRequestAttributes(req, 'websocket');
    const ws = this.engine.admitWebSocket(attrs);
    if ('reason' in ws) return rejectUpgrade(socket, ws);
    const verdict = this.engine.check(attrs, socket.remoteAddress ?? '');
    if (verdict instanceof Promise) {
      verdict.then((v) => this.admitted(req, socket, head, ws, v), () => {
        ws.release();
        answerAndClose(socket, 500);
      });
    } else {
      this.admitted(req, socket, head, ws, verdict);
    }
  }

  private admitted(req: IncomingMessage, socket: Socket, head: Buffer, ws: WebSocketAdmission, verdict: Permit | Rejection): void {
    if (isRejection(verdict)) {
      ws.release();
      return rejectUpgrade(socket, verdict);
    }
    const permit = verdict;
    if (socket.destroyed) {
      ws.release();
      return permit.cancel();
    }
    const upstream = request({
      host: this.appHost,
      port: this.appPort,
      method: req.method,
      path: req.url,
      headers: upgradeHeaders(req),
      agent: false,
      timeout: Math.min(permit.timeoutMs ?? Infinity, this.handshakeTimeoutMs),
    });
    let settled = false;
    const fail = (status: number, outcome: Parameters<Permit['done']>[0]) => {
      if (settled) return;
      settled = true;
      ws.release();
      permit.done(outcome);
      upstream.destroy();
      answerAndClose(socket, status);
    };
    upstream.on('timeout', () => fail(504, { timedOut: true }));
    upstream.on('error', () => fail(502, { connectError: true }));
    socket.once('close', () => {
      if (!settled) {
        settled = true;
        ws.release();
        permit.cancel();
        upstream.destroy();
      }
    });
    upstream.on('response', (res) => {
      // The app declined the upgrade: relay its answer as is.
      if (settled) return;
      settled = true;
      ws.release();
      permit.done({ status: res.statusCode ?? 502 });
      let headText = `HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? STATUS_CODES[res.statusCode ?? 502] ?? ''}\r\n`;
      for (let i = 0; i < res.rawHeaders.length; i += 2) {
        const name = res.rawHeaders[i] as string;
        if (!isHopByHop(name.toLowerCase())) headText += `${name}: ${res.rawHeaders[i + 1] as string}\r\n`;
      }
      socket.write(`${headText}connection: close\r\n\r\n`);
      res.pipe(socket);
    });
    upstream.on('upgrade', (res, app: Socket, appHead: Buffer) => {
      if (settled) {
        app.destroy();
        return;
      }
      settled = true;
      permit.done({ status: 101 });
      let headText = 'HTTP/1.1 101 Switching Protocols\r\n';
      for (let i = 0; i < res.rawHeaders.length; i += 2) headText += `${res.rawHeaders[i] as string}: ${res.rawHeaders[i + 1] as string}\r\n`;
      socket.write(`${headText}\r\n`);
      this.join(socket, app, head, appHead, ws);
    });
    upstream.end();
  }

  private join(client: Socket, app: Socket, clientHead: Buffer, appHead: Buffer, ws: { messagesPerSecond?: number; maxMessageBytes?: number; release(): void }): void {
    const now = () => this.clock.now();
    const toApp = new FrameInspector({ maxMessageBytes: ws.maxMessageBytes, messagesPerSecond: ws.messagesPerSecond, now });
    const conn: Connection = { client, app, toClient: new FrameInspector({ now }) };
    this.connections.add(conn);
    this.metrics.wsConnections.inc();
    client.setTimeout(0);
    client.setNoDelay(true);
    client.setKeepAlive(true, 30_000);
    app.setNoDelay(true);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      this.connections.delete(conn);
      this.metrics.wsConnections.dec();
      ws.release();
    };

    const fromClient = (chunk: Buffer) => {
      const { data, violation } = toApp.push(chunk);
      if (data.length > 0 && !app.write(data)) client.pause();
      if (violation) {
        this.metrics.wsCloses.labels(String(violation.code)).inc();
        client.removeListener('data', fromClient);
        this.closeBoth(conn, violation.code, violation.reason);
      }
    };
    const fromApp = (chunk: Buffer) => {
      conn.toClient.push(chunk);
      if (!client.write(chunk)) app.pause();
    };
    client.on('data', fromClient);
    app.on('data', fromApp);
    app.on('drain', () => client.resume());
    client.on('drain', () => app.resume());
    client.on('close', () => {
      app.destroy();
      end();
    });
    app.on('close', () => {
      client.end();
      end();
    });
    client.on('end', () => app.end());
    app.on('end', () => client.end());
    client.on('error', () => client.destroy());
    app.on('error', () => app.destroy());
    if (appHead.length > 0) fromApp(appHead);
    if (clientHead.length > 0) fromClient(clientHead);
  }

  /** Sends a close frame both ways (masked towards the app, as a client must) and ends both sockets. */
  private closeBoth(conn: Connection, code: number, reason: string): void {
    const { client, app } = conn;
    app.removeAllListeners('data');
    if (!conn.toClient.midFrame && client.writable) client.end(closeFrame(code, reason, false));
    else client.destroy();
    if (app.writable) app.end(closeFrame(code, reason, true));
    else app.destroy();
    setTimeout(() => {
      client.destroy();
      app.destroy();
    }, 2_000).unref();
  }

  /** Shutdown: every client gets 1001 Going Away. */
  closeAll(): void {
    this.closing = true;
    for (const conn of [...this.connections]) {
      this.metrics.wsCloses.labels(String(WS_CLOSE.GOING_AWAY)).inc();
      this.closeBoth(conn, WS_CLOSE.GOING_AWAY, 'sidecar shutting down');
    }
    if (this.connections.size > 0) this.logger.info('websocket connections closed for shutdown', { count: this.connections.size });
  }
}

function rejectUpgrade(socket: Socket, r: Rejection | { reason: 'rate_limited'; retryAfterMs: number }): void {
  if (!('decision' in r) && r.reason === 'rate_limited') {
    // maxConnections / connectionsPerSecond: no request quota to describe, just when to retry.
    return answerAndClose(socket, 429, `retry-after: ${Math.max(1, Math.ceil(r.retryAfterMs / 1000))}\r\n`);
  }
  const { status, headers } = httpRejection(r as Rejection);
  const extra = Object.entries(headers).filter(([k]) => k !== 'content-type').map(([k, v]) => `${k}: ${v}\r\n`).join('');
  answerAndClose(socket, status, extra);
}

function upgradeHeaders(req: IncomingMessage): Record<string, string | string[]> {
  const listed = connectionTokens(req.headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || isHopByHop(name) || listed?.has(name)) continue;
    out[name] = value;
  }
  out.connection = 'Upgrade';
  out.upgrade = 'websocket';
  const remote = req.socket.remoteAddress ?? '';
  const xff = req.headers['x-forwarded-for'];
  out['x-forwarded-for'] = xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${remote}` : remote;
  out['x-forwarded-proto'] ??= 'http';
  if (req.headers.host) out['x-forwarded-host'] ??= req.headers.host;
  return out;
}

export function splitHostPort(hostPort: string): [string, number] {
  const i = hostPort.lastIndexOf(':');
  if (i < 0) throw new RangeError(`"${hostPort}" is not host:port (or :port)`);
  const host = hostPort.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(hostPort.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`"${hostPort}" has no valid port`);
  return [host || '0.0.0.0', port];
}
