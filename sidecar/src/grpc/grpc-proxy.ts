import http2, { constants as h2, type Http2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { clientAddress, TRUST_NOBODY, type TrustedProxies } from '../http/client-address.ts';
import { withoutForwardingFields } from '../http/forwarded-headers.ts';
import net, { type AddressInfo, type Socket } from 'node:net';
import { systemClock, type Clock } from '../../../lib/clock.ts';
import type { RequestAttributes } from '../../../lib/policy/match.ts';
import { isRejection, type Permit, type PolicyEngine, type Rejection } from '../policy-engine/engine.ts';
import { grpcRejection } from '../policy-engine/responses.ts';
import type { Logger } from '../../../lib/log.ts';
import type { SidecarMetrics } from '../metrics.ts';
import { classifyPreface } from './connection-preface.ts';
import { ForwardedCall } from './grpc-call.ts';
import { GRPC_PROXY_ERRORS, type GrpcProxyErrorCode } from './grpc-errors.ts';
import { GrpcMetrics } from './grpc-metrics.ts';
import { readCallHead, type GrpcCallHead } from './grpc-request.ts';
import { encodeGrpcMessage, GRPC_STATUS } from './grpc-status.ts';
import { callDeadline } from './grpc-timeout.ts';
import { UpstreamSessions } from './grpc-upstream.ts';

export interface GrpcProxyOptions {
  readonly engine: PolicyEngine;
  /** The app's gRPC address, `host:port` (h2c). */
  readonly appGrpc: string;
  readonly metrics: SidecarMetrics;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** SETTINGS_MAX_CONCURRENT_STREAMS offered to each client connection. */
  readonly maxConcurrentStreams?: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE on both sides: what one call may have in flight per direction. */
  readonly initialWindowSize?: number;
  /** Connection-level receive window on both sides (the sum over a connection's calls). */
  readonly connectionWindowSize?: number;
  /**
   * Largest message (payload bytes) forwarded either way: a larger request or response message
   * ends the call with RESOURCE_EXHAUSTED, decided from its length prefix (nothing is buffered).
   */
  readonly maxMessageBytes?: number;
  /** HTTP/2 connections to the app. */
  readonly upstreamSessions?: number;
  /** How long a new connection may take to send its first bytes. */
  readonly prefaceTimeoutMs?: number;
  /**
   * An HTTP/2 PING goes to a connection to the app that has started no call for this long, so
   * one the app no longer answers (frozen, or a peer gone without a FIN) is found before calls
   * hang on it. 0 turns keepalive off.
   */
  readonly keepaliveIntervalMs?: number;
  /** A PING unanswered this long closes the connection; the next call dials a new one. */
  readonly keepaliveTimeoutMs?: number;
  /** Peers whose x-forwarded-for metadata is believed for the client address (default: nobody). */
  readonly trustedProxies?: TrustedProxies;
  /**
   * A client connection older than this (±10 % jitter, so connections opened together do not
   * all leave together) gets GOAWAY: it opens no new calls here, and a client that dials a
   * Service name re-resolves and spreads over the pods that exist now. Off when unset.
   */
  readonly maxConnectionAgeMs?: number;
  /** After the GOAWAY, calls still open may finish for this long; then the connection is cut. */
  readonly maxConnectionAgeGraceMs?: number;
}

export const GRPC_PROXY_DEFAULTS = {
  maxConcurrentStreams: 1000,
  initialWindowSize: 65_535,
  connectionWindowSize: 1 << 20,
  maxMessageBytes: 4 << 20,
  upstreamSessions: 1,
  prefaceTimeoutMs: 10_000,
  keepaliveIntervalMs: 30_000,
  keepaliveTimeoutMs: 10_000,
} as const;

const HTTP1_REFUSAL = (() => {
  const body = 'This port serves gRPC over HTTP/2 without TLS (h2c, prior knowledge). HTTP/1.x is not supported.\n';
  return `HTTP/1.1 505 HTTP Version Not Supported\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
})();

/**
 * The sidecar's inbound gRPC listener: h2c on `node:http2`, forwarding any service to the app
 * without its .proto. Per call, in this order:
 *   1. sniff the connection preface — HTTP/1.x gets a 505 it can read, other bytes are dropped;
 *   2. validate the call head (content-type, method, path, grpc-timeout) — cheap refusals first;
 *   3. ask the policy engine (rate limits → circuit breaker → bulkhead) — a rejection is a
 *      trailers-only status, and nothing reaches the app;
 *   4. relay the call (ForwardedCall) under the tighter of the client deadline and breaker timeout.
 */
export class GrpcProxy {
  private readonly engine: PolicyEngine;
  private readonly trusted: TrustedProxies;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly grpcMetrics: GrpcMetrics;
  private readonly upstream: UpstreamSessions;
  private readonly h2: Http2Server;
  private readonly server: net.Server;
  private readonly sessions = new Set<Http2Session>();
  private readonly sniffing = new Set<Socket>();
  private readonly maxMessageBytes: number;
  private readonly prefaceTimeoutMs: number;
  private readonly connectionWindowSize: number;
  private readonly maxConnectionAgeMs: number | undefined;
  private readonly maxConnectionAgeGraceMs: number;
  private closing = false;

  constructor(opts: GrpcProxyOptions) {
    const o = { ...GRPC_PROXY_DEFAULTS, ...definedOnly(opts) };
    if (!(o.maxMessageBytes >= 0)) throw new RangeError('maxMessageBytes must be ≥ 0');
    if (!(o.initialWindowSize >= 1 && o.initialWindowSize <= 2 ** 31 - 1)) throw new RangeError('initialWindowSize must be within 1..2^31-1');
    if (!(o.maxConcurrentStreams >= 1)) throw new RangeError('maxConcurrentStreams must be ≥ 1');
    this.engine = opts.engine;
    this.trusted = opts.trustedProxies ?? TRUST_NOBODY;
    this.logger = opts.logger;
    this.clock = opts.clock ?? systemClock;
    this.maxMessageBytes = o.maxMessageBytes;
    this.prefaceTimeoutMs = o.prefaceTimeoutMs;
    this.connectionWindowSize = o.connectionWindowSize;
    if (opts.maxConnectionAgeMs !== undefined && !(opts.maxConnectionAgeMs >= 1)) throw new RangeError('maxConnectionAgeMs must be ≥ 1');
    this.maxConnectionAgeMs = opts.maxConnectionAgeMs;
    this.maxConnectionAgeGraceMs = opts.maxConnectionAgeGraceMs ?? 30_000;
    this.grpcMetrics = new GrpcMetrics(opts.metrics);
    this.upstream = new UpstreamSessions({
      target: opts.appGrpc,
      sessions: o.upstreamSessions,
      initialWindowSize: o.initialWindowSize,
      connectionWindowSize: o.connectionWindowSize,
      keepaliveIntervalMs: o.keepaliveIntervalMs,
      keepaliveTimeoutMs: o.keepaliveTimeoutMs,
      logger: opts.logger,
      onKeepaliveTimeout: () => this.grpcMetrics.error('SLUICE_ERR_GRPC_UPSTREAM_KEEPALIVE'),
    });
    this.h2 = http2.createServer({
      settings: { maxConcurrentStreams: o.maxConcurrentStreams, initialWindowSize: o.initialWindowSize },
    });
    this.h2.on('session', this.onSession);
    this.h2.on('stream', this.onStream);
    this.server = net.createServer(this.onConnection);
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /**
   * Stops accepting connections, sends GOAWAY so clients open no new calls, lets calls in flight
   * finish for up to `graceMs`, then cuts what is left and closes the connections to the app.
   */
  async close(graceMs = 5_000): Promise<void> {
    this.closing = true;
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sniffing) s.destroy();
    const drained = Promise.all([...this.sessions].map((s) => new Promise<void>((resolve) => {
      if (s.destroyed) return resolve();
      s.once('close', () => resolve());
      s.close();
    })));
    const timer = setTimeout(() => {
      for (const s of this.sessions) s.destroy();
    }, graceMs);
    await drained;
    clearTimeout(timer);
    await this.upstream.close(Math.min(graceMs, 1_000));
    await stopped;
  }

  // A connection is sniffed before node:http2 sees it, so HTTP/1 and garbage on the port are
  // answered (505, closed) rather than left to a session that would only see a protocol error.

  private readonly onConnection = (socket: Socket): void => {
    if (this.closing) return void socket.destroy();
    socket.setNoDelay(true);
    socket.on('error', (err) => this.logger.debug('grpc client connection error', { err }));
    this.sniffing.add(socket);
    let seen: Buffer | undefined;
    const timer = setTimeout(() => socket.destroy(), this.prefaceTimeoutMs);
    const onData = (chunk: Buffer): void => {
      seen = seen ? Buffer.concat([seen, chunk]) : chunk;
      const verdict = classifyPreface(seen);
      if (verdict === 'need-more') return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      this.sniffing.delete(socket);
      if (verdict === 'h2') {
        // node:http2 reads bytes already taken off the socket once they are put back.
        socket.unshift(seen);
        this.h2.emit('connection', socket);
        return;
      }
      if (verdict === 'http1') {
        this.grpcMetrics.error('SLUICE_ERR_GRPC_HTTP1');
        socket.resume(); // discard the rest of the request
        socket.end(HTTP1_REFUSAL);
        setTimeout(() => socket.destroy(), 2_000).unref();
        return;
      }
      this.grpcMetrics.error('SLUICE_ERR_GRPC_BAD_PREFACE');
      socket.destroy();
    };
    socket.on('data', onData);
    socket.once('close', () => {
      clearTimeout(timer);
      this.sniffing.delete(socket);
    });
  };

  private readonly onSession = (session: Http2Session): void => {
    this.sessions.add(session);
    session.once('close', () => this.sessions.delete(session));
    // Malformed frames end the session with GOAWAY(PROTOCOL_ERROR); the process carries on.
    session.on('error', (err) => {
      this.grpcMetrics.error('SLUICE_ERR_GRPC_HTTP2_PROTOCOL');
      this.logger.debug('grpc client session error', { err });
    });
    if (this.connectionWindowSize > 65_535) session.setLocalWindowSize(this.connectionWindowSize);
    if (this.maxConnectionAgeMs !== undefined) this.ageOut(session, this.maxConnectionAgeMs);
  };

  /** GOAWAY by age (grpc-go's MaxConnectionAge): close() sends GOAWAY and waits for open calls. */
  private ageOut(session: Http2Session, ageMs: number): void {
    const jittered = ageMs * (0.9 + Math.random() * 0.2);
    const age = setTimeout(() => {
      if (session.closed || session.destroyed) return;
      this.grpcMetrics.error('SLUICE_INFO_GRPC_MAX_CONNECTION_AGE');
      session.close();
      const grace = setTimeout(() => session.destroy(), this.maxConnectionAgeGraceMs);
      grace.unref();
      session.once('close', () => clearTimeout(grace));
    }, jittered);
    age.unref();
    session.once('close', () => clearTimeout(age));
  }

  // A stream is one call: checked against the policy, then forwarded by a ForwardedCall.

  private readonly onStream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void => {
    const startedAt = this.clock.now();
    stream.on('error', noop); // resets by the client are routine; ForwardedCall watches 'close'
    const head = readCallHead(headers);
    if ('error' in head) return this.refuse(stream, head.error);
    if (this.closing) return this.refuse(stream, 'SLUICE_ERR_GRPC_SHUTTING_DOWN');
    const attrs: RequestAttributes = {
      protocol: 'grpc',
      method: 'POST',
      path: head.path,
      grpcMethod: head.grpcMethod,
      header: (name) => headerValue(headers, name),
    };
    let decision: Permit | Rejection | Promise<Permit | Rejection>;
    try {
      decision = this.engine.check(attrs, clientAddress(stream.session?.socket?.remoteAddress ?? '', headers['x-forwarded-for'], this.trusted));
    } catch (err) {
      this.logger.error('policy engine failed on a gRPC call', { err, method: head.grpcMethod });
      return this.answer(stream, head, startedAt, GRPC_STATUS.INTERNAL, 'policy evaluation failed');
    }
    if (decision instanceof Promise) {
      decision.then(
        (d) => this.proceed(stream, headers, head, startedAt, d),
        (err: unknown) => {
          this.logger.error('policy engine failed on a gRPC call', { err, method: head.grpcMethod });
          this.answer(stream, head, startedAt, GRPC_STATUS.INTERNAL, 'policy evaluation failed');
        },
      );
      return;
    }
    this.proceed(stream, headers, head, startedAt, decision);
  };

  private proceed(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, head: GrpcCallHead, startedAt: number, d: Permit | Rejection): void {
    if (isRejection(d)) {
      const r = grpcRejection(d);
      return this.answer(stream, head, startedAt, r.code, r.message, r.headers);
    }
    const method = this.grpcMetrics.method(head.grpcMethod);
    if (stream.closed || stream.destroyed) {
      // The client gave up while the decision was pending (a bulkhead wait, a Redis round trip).
      d.cancel();
      method.finish(GRPC_STATUS.CANCELLED, (this.clock.now() - startedAt) / 1000);
      return;
    }
    const peer = stream.session?.socket?.remoteAddress ?? '';
    new ForwardedCall({
      downstream: stream,
      // Forwarding metadata (x-forwarded-for, ...) reaches the app only from a trusted proxy.
      headers: this.trusted.has(peer) ? headers : withoutForwardingFields(headers),
      head,
      permit: d,
      deadline: callDeadline(head.timeoutMs, d.timeoutMs),
      startedAt,
      clock: this.clock,
      maxMessageBytes: this.maxMessageBytes,
      method,
      metrics: this.grpcMetrics,
      upstream: this.upstream,
    }).start();
  }

  /** A trailers-only answer for a call that never reaches the app, counted under its method. */
  private answer(stream: ServerHttp2Stream, head: GrpcCallHead, startedAt: number, code: number, message: string, extra: Record<string, string> = {}): void {
    this.grpcMetrics.method(head.grpcMethod).finish(code, (this.clock.now() - startedAt) / 1000);
    respondTrailersOnly(stream, 200, code, message, extra);
  }

  /** Refusal of a request that is not a well-formed gRPC call (or arrives while shutting down). */
  private refuse(stream: ServerHttp2Stream, error: GrpcProxyErrorCode): void {
    this.grpcMetrics.error(error);
    const spec = GRPC_PROXY_ERRORS[error];
    respondTrailersOnly(stream, spec.httpStatus, spec.grpcStatus, `${spec.message} (${error})`);
  }
}

function respondTrailersOnly(stream: ServerHttp2Stream, httpStatus: number, code: number, message: string, extra: Record<string, string> = {}): void {
  if (stream.closed || stream.destroyed || stream.headersSent) return;
  stream.respond(
    { ':status': httpStatus, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message), ...extra },
    { endStream: true },
  );
  // The request body will not be read: stop the client sending it (RST_STREAM NO_ERROR after the
  // response, RFC 9113 §8.1) instead of draining it.
  if (!stream.readableEnded) {
    stream.resume();
    stream.close(h2.NGHTTP2_NO_ERROR);
  }
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined || typeof v === 'string') return v;
  return Array.isArray(v) ? v.join(',') : String(v);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

const noop = (): void => {};
