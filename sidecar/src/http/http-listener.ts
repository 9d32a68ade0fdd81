import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Clock } from '../../../lib/clock.ts';
import type { Logger } from '../../../lib/log.ts';
import type { HistogramCell } from '../hot-metrics.ts';
import type { SidecarMetrics } from '../metrics.ts';
import { isRejection, type Permit, type PolicyEngine, type Rejection } from '../policy-engine/engine.ts';
import { httpRejection } from '../policy-engine/responses.ts';
import { WebSocketProxy, type WebSocketTuning } from '../websocket/websocket-proxy.ts';
import { answerAndClose, clientErrorStatus } from './client-errors.ts';
import { Forwarder, reply } from './forwarder.ts';
import { HttpRequestAttributes } from './request-attributes.ts';

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
}

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
  private inFlight = 0;
  private idle: (() => void) | undefined;

  constructor(opts: HttpListenerOptions) {
    this.engine = opts.engine;
    this.metrics = opts.metrics;
    this.clock = opts.clock;
    this.forwarder = new Forwarder({ appHttp: opts.appHttp, maxBodyBytes: opts.maxBodyBytes, upstreamTimeoutMs: opts.upstreamTimeoutMs });
    this.websockets = new WebSocketProxy({ engine: opts.engine, appHttp: opts.appHttp, metrics: opts.metrics, logger: opts.logger, clock: opts.clock, ...opts.websocket });
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
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === 'ECONNRESET' || !socket.writable) return socket.destroy();
      const status = clientErrorStatus(err.code);
      this.metrics.clientErrors.labels('http', String(status)).inc();
      answerAndClose(socket, status);
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
      return reply(res, 413, 'SLUICE_ERR_BODY_TOO_LARGE', 'request body too large', true);
    }
    const verdict = this.engine.check(new HttpRequestAttributes(req, 'http'), req.socket.remoteAddress ?? '');
    if (verdict instanceof Promise) {
      verdict.then((v) => this.proceed(req, res, v), () => reply(res, 500, 'SLUICE_ERR_INTERNAL', 'policy evaluation failed', false));
    } else {
      this.proceed(req, res, verdict);
    }
  }

  private proceed(req: IncomingMessage, res: ServerResponse, verdict: Permit | Rejection): void {
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
    this.forwarder.forward(req, res, permit.timeoutMs, (result) => {
      if (result.label === 'client_gone' || result.label === 'body_too_large') permit.cancel();
      else permit.done(result.outcome);
      this.observe(result.label, (this.clock.now() - start) / 1000);
      if (result.label === 'body_too_large') this.metrics.clientErrors.labels('http', '413').inc();
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
   * Graceful shutdown: stop accepting, close WebSocket clients with 1012 over the drain window, let in-flight requests finish
   * within the grace period, then close whatever is left.
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
    await closed;
    await this.forwarder.close();
  }
}
