import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from './node-http.ts';
import type { Socket } from 'node:net';
import type { Clock } from '../../../lib/clock.ts';
import type { Logger } from '../../../lib/log.ts';
import type { HistogramCell } from '../hot-metrics.ts';
import type { SidecarMetrics } from '../metrics.ts';
import { isRejection, type Permit, type PolicyEngine, type Rejection } from '../policy-engine/engine.ts';
import { httpRejection } from '../policy-engine/responses.ts';
import { WebSocketProxy, type WebSocketTuning } from '../websocket/websocket-proxy.ts';
import { clientAddress, TRUST_NOBODY, type TrustedProxies } from './client-address.ts';
import { answerAndClose, HTTP_ERRORS, parserErrorCode, replyError, type HttpErrorCode } from './http-errors.ts';
import { Forwarder } from './forwarder.ts';
import { normaliseTarget, type EscapedSlashAction } from './path-normalisation.ts';
import { HttpRequestAttributes } from './request-attributes.ts';
import { requestProblem } from './request-checks.ts';

export interface HttpListenerOptions {
  engine: PolicyEngine;
  appHttp: string;
  metrics: SidecarMetrics;
  logger: Logger;
  clock: Clock;
  /** Request bodies over this are answered 413 and never forwarded (default 10 MiB). */
  maxBodyBytes?: number;
  /** Total request headers over this are answered 431 (default 16 KiB). */
  maxHeaderBytes?: number;
  /** A client must finish sending headers within this (slowloris → 408; default 10 s). */
  headersTimeoutMs?: number;
  /** Upper bound on the app's answer when no breaker timeout applies (default 60 s). */
  upstreamTimeoutMs?: number;
  /** Heartbeats and the shutdown drain of proxied WebSocket connections. */
  websocket?: WebSocketTuning;
  /** `%2F`, `%5C` and `\\` in paths (default reject; see path-normalisation.ts). */
  pathEscapedSlashes?: EscapedSlashAction;
  /** Peers whose X-Forwarded-For is believed (default: nobody). */
  trustedProxies?: TrustedProxies;
}

/** After the grace period, how long closing may still wait for sockets before they are destroyed. */
const CLOSE_DEADLINE_MS = 2_000;

/**
 * The inbound HTTP/1.1 listener (`--listen-http`): protection first (Node's strict parser and the
 * limits below answer malformed input without forwarding it), then the policy engine, then the
 * forwarder; upgrades go to the WebSocket proxy.
 */
export class HttpListener {
  readonly server: Server;
  readonly websockets: WebSocketProxy;
  private readonly engine: PolicyEngine;
  private readonly forwarder: Forwarder;
  private readonly metrics: SidecarMetrics;
  private readonly upstreamCells = new Map<string, HistogramCell>();
  private readonly clock: Clock;
  private readonly escapedSlashes: EscapedSlashAction;
  private readonly trusted: TrustedProxies;
  /** Every accepted socket, upgraded ones included, so shutdown can end them all. */
  private readonly sockets = new Set<Socket>();
  private inFlight = 0;
  private idle: (() => void) | undefined;

  constructor(opts: HttpListenerOptions) {
    this.engine = opts.engine;
    this.metrics = opts.metrics;
    this.clock = opts.clock;
    this.escapedSlashes = opts.pathEscapedSlashes ?? 'reject';
    this.trusted = opts.trustedProxies ?? TRUST_NOBODY;
    this.forwarder = new Forwarder({ appHttp: opts.appHttp, maxBodyBytes: opts.maxBodyBytes, upstreamTimeoutMs: opts.upstreamTimeoutMs });
    this.websockets = new WebSocketProxy({
      engine: opts.engine, appHttp: opts.appHttp, metrics: opts.metrics, logger: opts.logger, clock: opts.clock,
      pathEscapedSlashes: this.escapedSlashes, trustedProxies: this.trusted, ...opts.websocket,
    });
    const headersTimeout = opts.headersTimeoutMs ?? 10_000;
    this.server = createServer({
      maxHeaderSize: opts.maxHeaderBytes ?? 16 * 1024,
      headersTimeout,
      requestTimeout: Math.max(headersTimeout, 300_000),
      keepAliveTimeout: 5_000,
      // Node checks the two timeouts above on this interval; the default (30 s) lets slowloris linger.
      connectionsCheckingInterval: Math.min(1_000, headersTimeout),
      insecureHTTPParser: false,
      requireHostHeader: true,
    });
    this.server.on('request', (req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.websockets.handleUpgrade(req, socket, head));
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.server.on('connect', (_req: IncomingMessage, socket: Socket) => {
      this.metrics.clientErrors.labels('http', '405').inc();
      answerAndClose(socket, 'SLUICE_ERR_METHOD_CONNECT');
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === 'ECONNRESET' || !socket.writable) return socket.destroy();
      const code = parserErrorCode(err.code);
      this.metrics.clientErrors.labels('http', String(HTTP_ERRORS[code].status)).inc();
      answerBetweenResponses(socket, code);
    });
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        const a = this.server.address();
        if (a && typeof a === 'object') resolve({ host: a.address, port: a.port });
      });
    });
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const cl = req.headers['content-length'];
    if (cl !== undefined && Number(cl) > this.forwarder.maxBodyBytes) {
      this.metrics.clientErrors.labels('http', '413').inc();
      return replyError(res, 'SLUICE_ERR_BODY_TOO_LARGE');
    }
    const problem = requestProblem(req);
    if (problem) return this.refuse(res, problem);
    const target = normaliseTarget(req.url ?? '/', this.escapedSlashes);
    if ('error' in target) return this.refuse(res, target.error);
    const remote = clientAddress(req.socket.remoteAddress ?? '', req.headers['x-forwarded-for'], this.trusted);
    const verdict = this.engine.check(new HttpRequestAttributes(req, 'http', target.path), remote);
    const path = target.query === '' ? target.path : target.path + target.query;
    if (verdict instanceof Promise) {
      verdict.then((v) => this.proceed(req, res, path, v), () => replyError(res, 'SLUICE_ERR_INTERNAL'));
    } else {
      this.proceed(req, res, path, verdict);
    }
  }

  private refuse(res: ServerResponse, code: HttpErrorCode): void {
    this.metrics.clientErrors.labels('http', String(HTTP_ERRORS[code].status)).inc();
    replyError(res, code);
  }

  private proceed(req: IncomingMessage, res: ServerResponse, path: string, verdict: Permit | Rejection): void {
    if (isRejection(verdict)) {
      const { status, headers, body } = httpRejection(verdict);
      res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (res.destroyed) return verdict.cancel();
    const permit = verdict;
    const start = this.clock.now();
    this.inFlight++;
    this.forwarder.forward(req, res, path, this.trusted, permit.timeoutMs, (result) => {
      // The client's own faults settle the permit without an outcome: they say nothing of the app.
      if (result.label === 'client_gone' || result.label === 'body_too_large' || result.label === 'client_error') permit.cancel();
      else permit.done(result.outcome);
      this.observe(result.label, (this.clock.now() - start) / 1000);
      if (result.label === 'body_too_large') this.metrics.clientErrors.labels('http', '413').inc();
      else if (result.label === 'client_error' && res.statusCode === 400) this.metrics.clientErrors.labels('http', '400').inc();
      if (--this.inFlight === 0) this.idle?.();
    });
  }

  private observe(label: string, seconds: number): void {
    let cell = this.upstreamCells.get(label);
    if (!cell) {
      cell = this.metrics.upstreamDuration.cell('http', label);
      this.upstreamCells.set(label, cell);
    }
    this.metrics.upstreamDuration.observe(cell, seconds);
  }

  /**
   * Graceful shutdown: stop accepting, close WebSocket clients with 1012 over the drain window, let
   * in-flight requests finish within the grace period, then close whatever is left. It has a hard
   * deadline: a socket that will not finish closing (a paused or half-closed WebSocket, a peer that
   * stopped reading) is destroyed, because a sidecar that never exits blocks the pod's termination.
   */
  async close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    void this.websockets.closeAll(graceMs);
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.idle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.server.closeAllConnections();
    let deadline: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise<void>((resolve) => (deadline = setTimeout(resolve, CLOSE_DEADLINE_MS)))]);
    clearTimeout(deadline);
    for (const s of this.sockets) s.destroy();
    await Promise.race([closed, new Promise<void>((resolve) => setTimeout(resolve, 100).unref())]);
    await Promise.race([this.forwarder.close(), new Promise<void>((resolve) => setTimeout(resolve, CLOSE_DEADLINE_MS).unref())]);
  }
}

/**
 * A parse error on a connection with a response still due must not be answered in the middle of
 * it (a 400 spliced into a 200's body), nor before it (the client would take the 400 for the
 * answer to its earlier, valid request). The answer waits for the responses to requests that
 * parsed whole, then the connection closes. Node keeps the response at the head of the
 * connection in `socket._httpMessage`. When the error is inside that request's own body, the
 * 400 is its answer — unless the app's response has begun, and then the connection just closes.
 */
function answerBetweenResponses(socket: Socket, code: HttpErrorCode): void {
  const current = (socket as Socket & { _httpMessage?: ServerResponse & { req?: IncomingMessage } })._httpMessage;
  if (current && !current.writableFinished && !current.destroyed) {
    if (current.req?.complete) {
      current.once('finish', () => answerBetweenResponses(socket, code));
      current.once('close', () => {
        if (!current.writableFinished) socket.destroy();
      });
      return;
    }
    if (current.headersSent) {
      socket.destroy();
      return;
    }
  }
  answerAndClose(socket, code);
}
