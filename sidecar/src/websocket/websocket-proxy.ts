import type { IncomingMessage } from 'node:http';
import { Agent, request, STATUS_CODES } from '../http/node-http.ts';
import type { Socket } from 'node:net';
import type { Clock } from '../../../lib/clock.ts';
import { clientAddress, TRUST_NOBODY, type TrustedProxies } from '../http/client-address.ts';
import { answerAndClose, HTTP_ERRORS, writeAndClose, type HttpErrorCode } from '../http/http-errors.ts';
import { forwardedRequestHeaders } from '../http/forwarded-headers.ts';
import { isHopByHop } from '../http/hop-by-hop.ts';
import { normaliseTarget, type EscapedSlashAction } from '../http/path-normalisation.ts';
import { HttpRequestAttributes } from '../http/request-attributes.ts';
import { requestProblem } from '../http/request-checks.ts';
import type { Logger } from '../../../lib/log.ts';
import type { SidecarMetrics } from '../metrics.ts';
import { isRejection, type Permit, type PolicyEngine, type Rejection, type WebSocketAdmission } from '../policy-engine/engine.ts';
import { httpRejection, REJECTION_CODES, WS_CLOSE } from '../policy-engine/responses.ts';
import { closeFrame, FrameInspector } from './frame-inspector.ts';
import { drainWindowMs, staggeredDrain } from './drain.ts';
import { DEFAULT_HEARTBEAT, heartbeatAction, PING_FRAME, PING_PAYLOAD, sweepEveryMs, type HeartbeatSettings, type Liveness } from './heartbeat.ts';

const CONN = Symbol('sluice.ws.connection');
type TaggedSocket = Socket & { [CONN]?: ProxiedConnection };

/** One joined client↔app pair after the 101. */
class ProxiedConnection implements Liveness {
  heard = false;
  lastHeardAt: number;
  pingSentAt: number | undefined = undefined;
  readonly client: Socket;
  readonly app: Socket;
  readonly toApp: FrameInspector;
  /** Tracks app→client frame boundaries so a close frame is never spliced into a frame. */
  readonly toClient = new FrameInspector({});
  private readonly proxy: WebSocketProxy;
  private readonly ws: WebSocketAdmission;
  private stopped = false;

  constructor(proxy: WebSocketProxy, client: Socket, app: Socket, ws: WebSocketAdmission, toApp: FrameInspector, now: number) {
    this.lastHeardAt = now;
    this.proxy = proxy;
    this.client = client;
    this.app = app;
    this.ws = ws;
    this.toApp = toApp;
  }

  fromClient(chunk: Buffer): void {
    if (this.stopped) return;
    this.heard = true;
    const data = this.toApp.push(chunk);
    if (data.length > 0 && !this.app.write(data)) this.client.pause();
    const violation = this.toApp.violation;
    if (violation) {
      this.stopped = true;
      this.proxy.violated(this, violation.code, violation.reason);
    }
  }

  fromApp(chunk: Buffer): void {
    if (this.stopped) return;
    this.toClient.push(chunk);
    if (!this.client.write(chunk)) this.app.pause();
  }

  /** A ping may go to the client now: between two of the app's frames, on a live socket. */
  get canPing(): boolean {
    return !this.stopped && !this.toClient.midFrame && this.client.writable;
  }

  /** A close is under way (its own timer ends it): heartbeats leave it alone. */
  get closing(): boolean {
    return this.stopped;
  }

  /** No more data is relayed either way (a close frame is being sent). */
  stop(): void {
    this.stopped = true;
  }

  end(): void {
    this.proxy.ended(this, this.ws);
  }
}

function onClientData(this: TaggedSocket, chunk: Buffer): void {
  this[CONN]?.fromClient(chunk);
}
function onAppData(this: TaggedSocket, chunk: Buffer): void {
  this[CONN]?.fromApp(chunk);
}
function onAppDrain(this: TaggedSocket): void {
  this[CONN]?.client.resume();
}
function onClientDrain(this: TaggedSocket): void {
  this[CONN]?.app.resume();
}
function onClientClose(this: TaggedSocket): void {
  const c = this[CONN];
  c?.app.destroy();
  c?.end();
}
function onAppClose(this: TaggedSocket): void {
  const c = this[CONN];
  if (!c) return;
  // end() alone can leave the client's socket open for ever: a client that never ends its side,
  // or one paused by backpressure (a paused socket never reads the FIN), would hold it — and the
  // sidecar's shutdown — indefinitely. It gets the closing-handshake time, then is destroyed.
  c.client.end();
  setTimeout(destroySocket, CLOSE_TIMEOUT_MS, c.client).unref();
  c.end();
}
function onClientEnd(this: TaggedSocket): void {
  this[CONN]?.app.end();
}
function onAppEnd(this: TaggedSocket): void {
  this[CONN]?.client.end();
}
function destroySelf(this: Socket): void {
  this.destroy();
}
function destroySocket(socket: Socket): void {
  socket.destroy();
}

/** How long a closing connection may take to finish its closing handshake before it is destroyed. */
const CLOSE_TIMEOUT_MS = 2_000;

/** WebSocket settings of the sidecar (flags), as opposed to the per-rule limits. */
export interface WebSocketTuning {
  /** Ping idle clients and close the ones that do not answer (see heartbeat.ts); intervalMs 0 turns it off. */
  heartbeat?: HeartbeatSettings;
  /** On shutdown, closes are spread over this much of the grace period (see drain.ts; default 10 s). */
  drainWindowMs?: number;
}

/**
 * Proxies WebSocket upgrades to the app and enforces the `websocket` limits. The handshake is
 * forwarded with node:http; after 101 the two sockets are joined by hand rather than piped,
 * because every client→server chunk passes the FrameInspector (message rate and size, close
 * 1008/1009, the sidecar's own pongs taken out), and pings and shutdown's 1012 must be sent at a
 * frame boundary.
 */
export class WebSocketProxy {
  private readonly engine: PolicyEngine;
  private readonly appHost: string;
  private readonly appPort: number;
  private readonly metrics: SidecarMetrics;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly handshakeTimeoutMs: number;
  private readonly escapedSlashes: EscapedSlashAction;
  private readonly trusted: TrustedProxies;
  private readonly connections = new Set<ProxiedConnection>();
  private closing = false;
  private readonly heartbeat: HeartbeatSettings;
  private readonly drainWindowMs: number;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(opts: {
    engine: PolicyEngine; appHttp: string; metrics: SidecarMetrics; logger: Logger; clock: Clock; handshakeTimeoutMs?: number;
    pathEscapedSlashes?: EscapedSlashAction; trustedProxies?: TrustedProxies;
  } & WebSocketTuning) {
    this.heartbeat = opts.heartbeat ?? DEFAULT_HEARTBEAT;
    this.drainWindowMs = opts.drainWindowMs ?? 10_000;
    this.engine = opts.engine;
    const [host, port] = splitHostPort(opts.appHttp);
    this.appHost = host;
    this.appPort = port;
    this.metrics = opts.metrics;
    this.logger = opts.logger;
    this.clock = opts.clock;
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 10_000;
    this.escapedSlashes = opts.pathEscapedSlashes ?? 'reject';
    this.trusted = opts.trustedProxies ?? TRUST_NOBODY;
  }

  get open(): number {
    return this.connections.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', destroySelf);
    if (this.closing) return answerAndClose(socket, 'SLUICE_ERR_SHUTTING_DOWN');
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      this.metrics.clientErrors.labels('websocket', '400').inc();
      return answerAndClose(socket, 'SLUICE_ERR_NOT_WEBSOCKET');
    }
    const problem = requestProblem(req);
    if (problem) return this.refuse(socket, problem);
    const target = normaliseTarget(req.url ?? '/', this.escapedSlashes);
    if ('error' in target) return this.refuse(socket, target.error);
    const attrs = new HttpRequestAttributes(req, 'websocket', target.path);
    const path = target.path + target.query;
    // One client address for the per-client connection quota and the rate limits.
    const remote = clientAddress(socket.remoteAddress ?? '', req.headers['x-forwarded-for'], this.trusted);
    const ws = this.engine.admitWebSocket(attrs, remote);
    if (ws instanceof Promise) {
      ws.then((a) => {
        if ('reason' in a) return rejectUpgrade(socket, a);
        if (socket.destroyed) return a.release();
        this.checkLimits(req, socket, head, attrs, remote, path, a);
      }, () => answerAndClose(socket, 'SLUICE_ERR_INTERNAL'));
      return;
    }
    if ('reason' in ws) return rejectUpgrade(socket, ws);
    this.checkLimits(req, socket, head, attrs, remote, path, ws);
  }

  private checkLimits(req: IncomingMessage, socket: Socket, head: Buffer, attrs: HttpRequestAttributes, remote: string, path: string, ws: WebSocketAdmission): void {
    const verdict = this.engine.check(attrs, remote);
    if (verdict instanceof Promise) {
      verdict.then((v) => this.admitted(req, socket, head, path, ws, v), () => {
        ws.release();
        answerAndClose(socket, 'SLUICE_ERR_INTERNAL');
      });
    } else {
      this.admitted(req, socket, head, path, ws, verdict);
    }
  }

  private refuse(socket: Socket, code: HttpErrorCode): void {
    this.metrics.clientErrors.labels('websocket', String(HTTP_ERRORS[code].status)).inc();
    answerAndClose(socket, code);
  }

  private admitted(req: IncomingMessage, socket: Socket, head: Buffer, path: string, ws: WebSocketAdmission, verdict: Permit | Rejection): void {
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
      path,
      headers: this.upgradeHeaders(req, ws),
      agent: UPGRADE_AGENT,
      timeout: Math.min(permit.timeoutMs ?? Infinity, this.handshakeTimeoutMs),
    });
    let settled = false;
    const fail = (code: HttpErrorCode, outcome: Parameters<Permit['done']>[0]) => {
      if (settled) return;
      settled = true;
      ws.release();
      permit.done(outcome);
      upstream.destroy();
      answerAndClose(socket, code);
    };
    upstream.on('timeout', () => fail('SLUICE_ERR_UPSTREAM_TIMEOUT', { timedOut: true }));
    upstream.on('error', () => fail('SLUICE_ERR_UPSTREAM_CONNECT', { connectError: true }));
    const onEarlyClose = () => {
      if (!settled) {
        settled = true;
        ws.release();
        permit.cancel();
        upstream.destroy();
      }
    };
    socket.once('close', onEarlyClose);
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
      socket.removeListener('close', onEarlyClose); // it would keep the handshake objects alive
      permit.done({ status: 101 });
      let headText = 'HTTP/1.1 101 Switching Protocols\r\n';
      for (let i = 0; i < res.rawHeaders.length; i += 2) headText += `${res.rawHeaders[i] as string}: ${res.rawHeaders[i + 1] as string}\r\n`;
      socket.write(`${headText}\r\n`);
      this.join(socket, app, head, appHead, ws);
    });
    upstream.end();
  }

  private join(client: Socket, app: Socket, clientHead: Buffer, appHead: Buffer, ws: WebSocketAdmission): void {
    const beating = this.heartbeat.intervalMs > 0;
    const toApp = new FrameInspector({ maxMessageBytes: ws.maxMessageBytes, messagesPerSecond: ws.messagesPerSecond, clock: this.clock, ownPong: beating ? PING_PAYLOAD : undefined });
    const conn = new ProxiedConnection(this, client, app, ws, toApp, this.clock.now());
    this.connections.add(conn);
    if (beating) this.sweeper ??= setInterval(() => this.sweep(), sweepEveryMs(this.heartbeat)).unref();
    this.metrics.wsConnections.inc();
    client.setTimeout(0);
    client.setNoDelay(true);
    client.setKeepAlive(true, 30_000);
    app.setTimeout(0); // the handshake timeout must not outlive the handshake
    app.setNoDelay(true);
    // Shared listener functions find their connection through the socket: no closures per
    // connection, which matters with tens of thousands of idle sockets.
    (client as TaggedSocket)[CONN] = conn;
    (app as TaggedSocket)[CONN] = conn;
    client.on('data', onClientData);
    app.on('data', onAppData);
    app.on('drain', onAppDrain);
    client.on('drain', onClientDrain);
    client.on('close', onClientClose);
    app.on('close', onAppClose);
    client.on('end', onClientEnd);
    app.on('end', onAppEnd);
    app.on('error', destroySelf);
    if (appHead.length > 0) conn.fromApp(appHead);
    if (clientHead.length > 0) conn.fromClient(clientHead);
    // Admitted while shutdown began (a Global decision was in flight): the drain has its list already.
    if (this.closing) this.closeBoth(conn, WS_CLOSE.SERVICE_RESTART, 'service restart');
  }

  /** @internal called by ProxiedConnection */
  ended(conn: ProxiedConnection, ws: WebSocketAdmission): void {
    if (!this.connections.delete(conn)) return;
    this.metrics.wsConnections.dec();
    ws.release();
    if (this.connections.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** One pass of the heartbeat over every connection: ping the silent, close the dead. */
  private sweep(): void {
    const now = this.clock.now();
    for (const conn of this.connections) {
      if (conn.closing) continue;
      const action = heartbeatAction(conn, now, this.heartbeat, conn.canPing);
      if (action === 'ping') conn.client.write(PING_FRAME);
      else if (action === 'dead') this.closeDead(conn);
    }
  }

  /**
   * A client that did not answer: its socket is destroyed at once (a dead peer would never complete
   * a close handshake), which releases its slots; the app is told 1001 (the client went away).
   */
  private closeDead(conn: ProxiedConnection): void {
    this.metrics.wsPingTimeouts.inc();
    conn.stop();
    const { client, app } = conn;
    if (!conn.toApp.midFrame && app.writable) app.end(closeFrame(WS_CLOSE.GOING_AWAY, 'client did not answer ping', true));
    else app.destroy();
    client.destroy();
  }

  /** @internal called by ProxiedConnection */
  violated(conn: ProxiedConnection, code: number, reason: string): void {
    this.metrics.wsCloses.labels(String(code)).inc();
    this.closeBoth(conn, code, reason);
  }

  /** Sends a close frame both ways (masked towards the app, as a client must) and ends both sockets. */
  private closeBoth(conn: ProxiedConnection, code: number, reason: string): void {
    const { client, app } = conn;
    conn.stop();
    if (!conn.toClient.midFrame && client.writable) client.end(closeFrame(code, reason, false));
    else client.destroy();
    if (app.writable) app.end(closeFrame(code, reason, true));
    else app.destroy();
    setTimeout(() => {
      client.destroy();
      app.destroy();
    }, 2_000).unref();
  }

  /**
   * The handshake for the app. Where a rule limits message size, the client's offer of
   * permessage-deflate is withdrawn: a size rule counts what the app will receive, and a few KiB
   * of deflate can inflate to gigabytes there. (The FrameInspector then refuses compressed frames.)
   */
  private upgradeHeaders(req: IncomingMessage, ws: WebSocketAdmission): string[] {
    const out = forwardedRequestHeaders(req, this.trusted);
    if (ws.maxMessageBytes !== undefined) {
      for (let i = out.length - 2; i >= 0; i -= 2) if ((out[i] as string).toLowerCase() === 'sec-websocket-extensions') out.splice(i, 2);
    }
    out.push('connection', 'Upgrade', 'upgrade', 'websocket');
    return out;
  }

  /**
   * Shutdown: new upgrades are refused, and every client gets 1012 (service restart: reconnect,
   * elsewhere) — spread over the drain window so that they do not all reconnect at once.
   * Resolves when the last close has been sent.
   */
  closeAll(graceMs = 0): Promise<void> {
    // Once: the app may have asked for the drain (local API) before the sidecar's own shutdown.
    if (this.draining) return this.draining;
    this.closing = true;
    const open = [...this.connections];
    const windowMs = drainWindowMs(this.drainWindowMs, graceMs);
    this.drainInfo = { connections: open.length, windowMs };
    if (open.length === 0) return (this.draining = Promise.resolve());
    this.logger.info('closing websocket connections for shutdown', { count: open.length, windowMs });
    this.draining = staggeredDrain(open, windowMs, (conn) => {
      if (!this.connections.has(conn)) return;
      this.metrics.wsCloses.labels(String(WS_CLOSE.SERVICE_RESTART)).inc();
      this.closeBoth(conn, WS_CLOSE.SERVICE_RESTART, 'service restart');
    }, this.clock);
    return this.draining;
  }

  /** What the drain closes and over how long (after closeAll). */
  drainInfo: { connections: number; windowMs: number } | undefined;
  private draining: Promise<void> | undefined;
}

/**
 * Upgraded sockets leave the agent's pool, so one shared agent without keep-alive only saves
 * creating an Agent (and its bookkeeping) per connection, as `agent: false` would.
 */
const UPGRADE_AGENT = new Agent({ keepAlive: false });

function rejectUpgrade(socket: Socket, r: Rejection | { reason: 'rate_limited'; retryAfterMs: number }): void {
  if (!('decision' in r) && r.reason === 'rate_limited') {
    // maxConnections / connectionsPerSecond: no request quota to describe, just when to retry.
    return writeAndClose(socket, 429, `retry-after: ${Math.max(1, Math.ceil(r.retryAfterMs / 1000))}\r\n`, JSON.stringify({ error: 'rate limited', code: REJECTION_CODES.rate_limited }));
  }
  const { status, headers, body } = httpRejection(r as Rejection);
  const extra = Object.entries(headers).filter(([k]) => k !== 'content-type').map(([k, v]) => `${k}: ${v}\r\n`).join('');
  writeAndClose(socket, status, extra, body);
}

export function splitHostPort(hostPort: string): [string, number] {
  const i = hostPort.lastIndexOf(':');
  if (i < 0) throw new RangeError(`"${hostPort}" is not host:port (or :port)`);
  const host = hostPort.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(hostPort.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`"${hostPort}" has no valid port`);
  return [host || '0.0.0.0', port];
}
