import { listenOn } from '../../../lib/net.ts';
import http2, { constants as h2, type ClientHttp2Session, type ClientHttp2Stream, type Http2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../../lib/log.ts';
import { GRPC_PROXY_ERRORS } from '../grpc/grpc-errors.ts';
import { readCallHead, relayedHeaders, upstreamRequestHeaders, type GrpcCallHead } from '../grpc/grpc-request.ts';
import { GRPC_STATUS, encodeGrpcMessage, grpcCodeName, grpcStatusFromHttp, parseGrpcStatus } from '../grpc/grpc-status.ts';
import { formatGrpcTimeout } from '../grpc/grpc-timeout.ts';
import { UpstreamSessions } from '../grpc/grpc-upstream.ts';
import type { Endpoint } from './endpoint.ts';
import { breakerOutcome, OUTBOUND_ERRORS, type OutboundErrorCode } from './outbound-errors.ts';
import { isRejection, type Permit, type Rejection } from '../policy-engine/engine.ts';
import { grpcRejection } from '../policy-engine/responses.ts';
import { decideRetry, type TryOutcome } from './retry-decision.ts';
import type { TryResult, UpstreamRuntime } from './upstream-runtime.ts';

/** What a call may hold for replay; past it the call is committed to its current try (gRFC A6). */
export const GRPC_REPLAY_BUFFER_BYTES = 64 * 1024;
/** Statuses that count against an endpoint in outlier detection: it, not the request, is at fault. */
const ENDPOINT_FAILURES = new Set<number>([GRPC_STATUS.UNAVAILABLE, GRPC_STATUS.INTERNAL, GRPC_STATUS.UNKNOWN, GRPC_STATUS.DATA_LOSS]);
const END_STREAM = h2.NGHTTP2_FLAG_END_STREAM;
/** How long response headers may wait for the first message before the call commits to its try. */
export const HEADERS_HOLD_MS = 20;
const noop = (): void => {};

/**
 * An Upstream's gRPC listener: h2c on its loopback `listen`, each call sent to an endpoint the
 * balancer picks, retried per the policy, with one pool of HTTP/2 connections per endpoint.
 */
export class OutboundGrpcListener {
  private readonly rt: UpstreamRuntime;
  private readonly logger: Logger;
  private readonly server: Http2Server;
  private readonly sessions = new Set<Http2Session>();
  private readonly pools = new Map<string, UpstreamSessions>();
  private closing = false;

  constructor(rt: UpstreamRuntime, logger: Logger) {
    this.rt = rt;
    this.logger = logger;
    this.server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
    this.server.on('session', (s: Http2Session) => {
      this.sessions.add(s);
      s.once('close', () => this.sessions.delete(s));
      s.on('error', (err) => logger.debug('outbound grpc client session error', { err }));
    });
    this.server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => this.onStream(stream, headers));
  }

  listen(): Promise<AddressInfo> {
    const { host, port } = this.rt.plan.listen;
    return listenOn(this.server, host, port);
  }

  /** The connections to one endpoint (dialled on first use). */
  pool(ep: Endpoint): UpstreamSessions {
    let p = this.pools.get(ep.address);
    if (!p) {
      p = new UpstreamSessions({ target: ep.address, sessions: 1, initialWindowSize: 65_535, connectionWindowSize: 1 << 20, keepaliveIntervalMs: 30_000, keepaliveTimeoutMs: 10_000, logger: this.logger });
      this.pools.set(ep.address, p);
    }
    return p;
  }

  /** An endpoint left the set: its connections close once their calls are done. */
  endpointRemoved(ep: Endpoint): void {
    const p = this.pools.get(ep.address);
    this.pools.delete(ep.address);
    void p?.close(30_000);
  }

  async close(graceMs: number): Promise<void> {
    this.closing = true;
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const timer = setTimeout(() => {
      for (const s of this.sessions) s.destroy();
    }, graceMs);
    await Promise.all([...this.sessions].map((s) => new Promise<void>((resolve) => {
      if (s.destroyed) return resolve();
      s.once('close', () => resolve());
      s.close();
    })));
    clearTimeout(timer);
    await Promise.all([...this.pools.values()].map((p) => p.close(Math.min(graceMs, 1_000))));
    await stopped;
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', noop);
    const head = readCallHead(headers);
    if ('error' in head) {
      const spec = GRPC_PROXY_ERRORS[head.error];
      return trailersOnly(stream, spec.httpStatus, spec.grpcStatus, `${spec.message} (${head.error})`);
    }
    if (this.closing) return trailersOnly(stream, 200, GRPC_STATUS.UNAVAILABLE, `${OUTBOUND_ERRORS.SLUICE_ERR_OUTBOUND_SHUTTING_DOWN.message} (SLUICE_ERR_OUTBOUND_SHUTTING_DOWN)`);
    new OutboundGrpcCall(this, this.rt, stream, headers, head).start();
  }
}

interface Try {
  readonly call: OutboundGrpcCall;
  readonly ep: Endpoint;
  readonly n: number;
  readonly startedAt: number;
  up: TryStream | undefined;
  session: ClientHttp2Session | undefined;
  pool: UpstreamSessions;
  error: Error | undefined;
  trailers: IncomingHttpHeaders | undefined;
  timer: NodeJS.Timeout | undefined;
  over: boolean;
}

/**
 * A try's stream knows its try, so its listeners are the functions below, shared by every try,
 * instead of six closures made per try.
 */
const TRY = Symbol('try');
type TryStream = ClientHttp2Stream & { [TRY]: Try };

function onTryResponse(this: TryStream, headers: IncomingHttpHeaders, flags: number): void {
  const t = this[TRY];
  t.call.onResponse(t, headers, flags);
}
function onTryTrailers(this: TryStream, trailers: IncomingHttpHeaders): void {
  this[TRY].trailers = trailers;
}
function onTryData(this: TryStream, chunk: Buffer): void {
  const t = this[TRY];
  t.call.onUpData(t, chunk);
}
function onTryEnd(this: TryStream): void {
  const t = this[TRY];
  t.call.onUpEnd(t);
}
function onTryClose(this: TryStream): void {
  const t = this[TRY];
  t.call.onUpClose(t);
}
function onTryError(this: TryStream, err: Error): void {
  this[TRY].error = err;
}
function onTryTimer(t: Try): void {
  t.call.onTryTimeout(t);
}
function onHoldTimer(t: Try): void {
  t.call.commit(t);
}
function armHold(t: Try): void {
  t.call.armHold(t);
}

/**
 * One call from the app: tries in turn until one's response starts (then it is relayed, bytes
 * untouched, and committed) or the policy, the budget or the deadline says stop.
 *
 * Replay: the request's bytes are kept while they fit GRPC_REPLAY_BUFFER_BYTES, so a new try can
 * resend them; past that the call is committed to its try. Between tries the app's stream is
 * paused, so nothing arrives that could not be replayed. Each try carries the time left as its
 * grpc-timeout (capped by perTryTimeout) and, from the second on, grpc-previous-rpc-attempts.
 */
class OutboundGrpcCall {
  private readonly listener: OutboundGrpcListener;
  private readonly rt: UpstreamRuntime;
  private readonly down: ServerHttp2Stream;
  private readonly headers: IncomingHttpHeaders;
  private readonly head: GrpcCallHead;
  private readonly startedAt: number;
  private readonly deadlineAt: number;
  private readonly deadlineBound: 'client' | 'upstream';
  /** Endpoints tried so far, made at the first retry (most calls have one try). */
  private tried: Set<Endpoint> | undefined;
  private firstTried: Endpoint | undefined;
  /** The request's bytes kept for replay; made at the first chunk, undefined once past the limit. */
  private buffer: Buffer[] | undefined;
  private replayable = true;
  private buffered = 0;
  private downEnded = false;
  private current: Try | undefined;
  private tries = 0;
  private committed = false;
  private settled = false;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private backoffTimer: NodeJS.Timeout | undefined;
  private upTrailersOut: Record<string, string | string[] | number> | undefined;

  constructor(listener: OutboundGrpcListener, rt: UpstreamRuntime, down: ServerHttp2Stream, headers: IncomingHttpHeaders, head: GrpcCallHead) {
    this.listener = listener;
    this.rt = rt;
    this.down = down;
    this.headers = headers;
    this.head = head;
    this.startedAt = rt.clock.now();
    const planMs = rt.plan.timeoutMs;
    const clientMs = head.timeoutMs;
    this.deadlineBound = clientMs !== undefined && clientMs <= planMs ? 'client' : 'upstream';
    this.deadlineAt = this.startedAt + Math.min(planMs, clientMs ?? Infinity);
  }

  start(): void {
    const engine = this.rt.guard;
    if (!engine) return this.begin();
    // Client-side rate limits and breakers (match.upstream) decide before any try.
    const headers = this.headers;
    let d: Permit | Rejection | Promise<Permit | Rejection>;
    try {
      d = engine.check({
        protocol: 'grpc', method: 'POST', path: this.head.path, grpcMethod: this.head.grpcMethod, upstream: this.rt.plan.id,
        header: (name) => { const v = headers[name]; return v === undefined ? undefined : Array.isArray(v) ? v.join(',') : String(v); },
      }, '127.0.0.1');
    } catch {
      return this.reject(GRPC_STATUS.INTERNAL, 'policy evaluation failed');
    }
    if (d instanceof Promise) {
      this.down.pause();
      d.then((x) => this.admitted(x), () => this.reject(GRPC_STATUS.INTERNAL, 'policy evaluation failed'));
      return;
    }
    this.admitted(d);
  }

  private admitted(d: Permit | Rejection): void {
    if (isRejection(d)) {
      const r = grpcRejection(d);
      return this.reject(r.code, r.message, r.headers);
    }
    if (this.down.closed || this.down.destroyed) return d.cancel();
    this.permit = d;
    this.begin();
  }

  private reject(code: number, message: string, extra: Record<string, string> = {}): void {
    trailersOnly(this.down, 200, code, message, extra);
    this.rt.callEnded('rejected', (this.rt.clock.now() - this.startedAt) / 1000);
  }

  private permit: Permit | undefined;

  private begin(): void {
    this.rt.callStarted();
    const down = this.down;
    down.on('close', this.onDownClose);
    down.on('wantTrailers', this.onWantTrailers);
    down.on('data', this.onDownData);
    down.on('end', this.onDownEnd);
    // Node keeps timers of one duration in one list behind one OS timer, so a timer per call with
    // the plan's timeout is an append and an unlink; a shared queue re-armed for each next expiry
    // cost more (a new duration each time), as the profile in bench/README.md shows.
    this.deadlineTimer = setTimeout(this.onDeadline, Math.max(0, this.deadlineAt - this.rt.clock.now()));
    this.attempt();
  }

  // Each try picks an endpoint not tried yet, with what is left of the call's deadline.

  private attempt(): void {
    this.backoffTimer = undefined;
    if (this.settled) return;
    if (this.tries === 1) this.tried = new Set([this.firstTried as Endpoint]);
    const ep = this.rt.pick(this.tried);
    if (!ep) {
      if (this.tries === 0) return this.fail('SLUICE_ERR_OUTBOUND_NO_ENDPOINTS', `upstream ${this.rt.plan.id} has no ready endpoint`);
      return this.fail('SLUICE_ERR_OUTBOUND_CONNECT');
    }
    if (this.tried) this.tried.add(ep);
    else this.firstTried = ep;
    this.tries++;
    const now = this.rt.clock.now();
    const left = this.deadlineAt - now;
    const perTry = this.rt.plan.retry.perTryTimeoutMs;
    const tryMs = perTry !== undefined && perTry < left ? perTry : left;
    const t: Try = { call: this, ep, n: this.tries, startedAt: now, up: undefined, session: undefined, pool: this.listener.pool(ep), error: undefined, trailers: undefined, timer: undefined, over: false };
    this.current = t;
    this.rt.tryStarted(ep);
    const headers = upstreamRequestHeaders(this.headers, this.head.path, formatGrpcTimeout(tryMs));
    if (t.n > 1) headers['grpc-previous-rpc-attempts'] = String(t.n - 1);
    let up: TryStream;
    try {
      t.session = t.pool.session();
      up = t.session.request(headers, { endStream: false }) as TryStream;
    } catch (err) {
      t.error = err as Error;
      return this.tryFailed(t, { kind: 'connect-failure' }, 'connect_failure');
    }
    up[TRY] = t;
    t.up = up;
    up.on('response', onTryResponse);
    up.on('trailers', onTryTrailers);
    up.on('data', onTryData);
    up.on('end', onTryEnd);
    up.on('close', onTryClose);
    up.on('error', onTryError);
    if (perTry !== undefined && perTry < left) t.timer = setTimeout(onTryTimer, perTry, t);
    if (this.buffer) for (const chunk of this.buffer) up.write(chunk);
    if (this.downEnded) up.end();
    else this.down.resume();
  }

  /** A try ended without its response starting: retry if policy, budget and time allow. */
  private tryFailed(t: Try, outcome: TryOutcome, result: TryResult, trailersOnly?: IncomingHttpHeaders): void {
    if (t.over || this.settled) return;
    this.endTry(t, result);
    const decision = decideRetry(this.rt.plan.retry, outcome, {
      tries: this.tries,
      replayable: this.replayable,
      idempotent: true,
      timeLeftMs: this.deadlineAt - this.rt.clock.now(),
    }, this.rt.random);
    if (decision.retry && this.rt.acquireRetry()) {
      this.down.pause(); // nothing arrives between tries that could not be replayed
      this.backoffTimer = setTimeout(() => this.attempt(), decision.delayMs);
      return;
    }
    if (trailersOnly) return this.relayTrailersOnly(trailersOnly);
    switch (outcome.kind) {
      case 'connect-failure': return this.fail('SLUICE_ERR_OUTBOUND_CONNECT', `cannot connect to ${t.ep.address}: ${errorCode(t.error)}`);
      case 'reset': return this.fail('SLUICE_ERR_OUTBOUND_RESET', `${t.ep.address} reset the call: ${errorCode(t.error)}`);
      case 'try-timeout': return this.fail('SLUICE_ERR_OUTBOUND_TRY_TIMEOUT');
      default: return this.fail('SLUICE_ERR_OUTBOUND_PROTOCOL');
    }
  }

  private endTry(t: Try, result: TryResult, latencyMs?: number): void {
    if (t.over) return;
    t.over = true;
    if (t.timer) clearTimeout(t.timer);
    if (t.up && !t.up.closed && result !== 'ok' && result !== 'failure') t.up.close(h2.NGHTTP2_CANCEL);
    this.rt.tryEnded(t.ep, result, latencyMs);
  }

  private dropHeld(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    this.heldHeaders = undefined;
  }

  /** @internal the try's perTryTimeout passed. */
  onTryTimeout(t: Try): void {
    t.timer = undefined;
    if (t.over || this.committed) return;
    this.dropHeld();
    this.tryFailed(t, { kind: 'try-timeout' }, 'timeout');
  }

  /** @internal the try's response headers (its stream's listener calls it). */
  onResponse(t: Try, headers: IncomingHttpHeaders, flags: number): void {
    if (t.over || this.settled) return;
    const latency = this.rt.clock.now() - t.startedAt;
    const status = Number(headers[':status'] ?? 0);
    if (status !== 200) {
      const code = grpcStatusFromHttp(status);
      return this.tryFailed(t, { kind: 'grpc-status', code }, 'failure', { ':status': '200', 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(`${t.ep.address} answered HTTP ${status} (SLUICE_ERR_OUTBOUND_PROTOCOL)`) });
    }
    if (flags & END_STREAM) {
      // Trailers-only: a status before any response — the one place A6 retries.
      const code = parseGrpcStatus(headers['grpc-status']);
      if (code !== GRPC_STATUS.OK) {
        const pushback = headers['grpc-retry-pushback-ms'];
        return this.tryFailed(t, { kind: 'grpc-status', code, pushback: typeof pushback === 'string' ? pushback : undefined }, ENDPOINT_FAILURES.has(code) ? 'failure' : 'ok', headers);
      }
      this.endTry(t, 'ok', latency);
      return this.relayTrailersOnly(headers);
    }
    // Response headers: A6 commits the call once the app has seen them. They are held back until
    // the first message or the trailers (which a unary answer sends with them), or HEADERS_HOLD_MS
    // at most, so an endpoint that dies between its headers and its answer is still retried: the
    // app has seen nothing of that try.
    this.tryLatency = latency;
    this.heldHeaders = headers;
    // A unary answer's message and trailers mostly come in the same read as its headers, so the
    // call usually commits before the next tick: only then is the hold's timer worth arming.
    process.nextTick(armHold, t);
  }

  /** @internal still holding the try's headers a tick later: wait HEADERS_HOLD_MS at most. */
  armHold(t: Try): void {
    if (this.committed || t.over || this.settled || !this.heldHeaders || this.holdTimer) return;
    this.holdTimer = setTimeout(onHoldTimer, HEADERS_HOLD_MS, t);
  }

  private tryLatency: number | undefined;
  private heldHeaders: IncomingHttpHeaders | undefined;
  private holdTimer: NodeJS.Timeout | undefined;

  /** @internal This try is the call's now: its headers go to the app, and nothing more is retried. */
  commit(t: Try): void {
    if (this.committed || t.over || this.settled || !this.heldHeaders) return;
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    this.committed = true;
    this.buffer = undefined;
    this.replayable = false;
    if (t.timer) {
      clearTimeout(t.timer);
      t.timer = undefined;
    }
    if (this.canRespond()) this.down.respond(relayedHeaders(this.heldHeaders, 200), { waitForTrailers: true });
    this.heldHeaders = undefined;
  }

  /** @internal */
  onUpData(t: Try, chunk: Buffer): void {
    if (t.over || this.settled) return;
    if (!this.committed) this.commit(t);
    if (!this.committed) return;
    if (!this.down.write(chunk)) {
      t.up?.pause();
      this.down.once('drain', () => t.up?.resume());
    }
  }

  /** @internal */
  onUpEnd(t: Try): void {
    if (t.over || this.settled) return;
    if (!this.committed) this.commit(t);
    if (!this.committed) return;
    const tr = t.trailers;
    if (!tr) return this.failCommitted(t, GRPC_STATUS.INTERNAL, 'SLUICE_ERR_OUTBOUND_PROTOCOL', 'the endpoint ended the call without a grpc-status');
    const code = parseGrpcStatus(tr['grpc-status']);
    this.endTry(t, ENDPOINT_FAILURES.has(code) ? 'failure' : 'ok', this.tryLatency);
    this.upTrailersOut = relayedHeaders(tr);
    if (this.downWritable()) this.down.end();
    this.settle(grpcCodeName(code).toLowerCase(), code);
  }

  /** @internal */
  onUpClose(t: Try): void {
    if (t.over || this.settled) return;
    if (t.up?.rstCode === h2.NGHTTP2_NO_ERROR && t.trailers) return this.onUpEnd(t);
    if (this.committed) {
      // A stream already answering when its endpoint died: never retried (its response started).
      return this.failCommitted(t, GRPC_STATUS.UNAVAILABLE, 'SLUICE_ERR_OUTBOUND_RESET', `connection to ${t.ep.address} lost mid-call: ${errorCode(t.error)}`);
    }
    if (this.heldHeaders) {
      // Headers came, then the stream died before anything else: the app saw nothing of it.
      this.dropHeld();
      return this.tryFailed(t, { kind: 'reset' }, 'reset');
    }
    const connected = t.session !== undefined && t.pool.hasConnected(t.session);
    if (!connected) return this.tryFailed(t, { kind: 'connect-failure' }, 'connect_failure');
    // REFUSED_STREAM means the server never began the call: as safe to retry as any reset.
    this.tryFailed(t, { kind: 'reset' }, 'reset');
  }

  private readonly onDownData = (chunk: Buffer): void => {
    if (this.settled) return;
    if (this.replayable) {
      if (this.buffered + chunk.length <= GRPC_REPLAY_BUFFER_BYTES) {
        (this.buffer ??= []).push(chunk);
        this.buffered += chunk.length;
      } else {
        this.buffer = undefined; // too large to replay: committed to the current try
        this.replayable = false;
      }
    }
    const up = this.current && !this.current.over ? this.current.up : undefined;
    if (!up) {
      // Between tries the stream is paused; a chunk that still slipped in past the buffer
      // cannot be replayed, so the call ends rather than send half a request.
      if (!this.replayable) this.fail('SLUICE_ERR_OUTBOUND_RESET', 'the request outgrew the replay buffer between tries');
      return;
    }
    if (!up.write(chunk)) {
      this.down.pause();
      up.once('drain', () => { if (!this.settled && this.current?.up === up) this.down.resume(); });
    }
  };

  private readonly onDownEnd = (): void => {
    this.downEnded = true;
    const t = this.current;
    if (t && !t.over && t.up && !t.up.closed) t.up.end();
  };

  private readonly onDownClose = (): void => {
    if (this.settled) return;
    // The app cancelled (or went away): stop the try in flight and any backoff.
    const t = this.current;
    if (t && !t.over) this.endTry(t, 'cancelled');
    this.settle('cancelled');
  };

  private readonly onWantTrailers = (): void => {
    this.down.sendTrailers(this.upTrailersOut ?? { 'grpc-status': String(GRPC_STATUS.INTERNAL), 'grpc-message': 'no status (SLUICE_ERR_OUTBOUND_PROTOCOL)' });
  };

  private readonly onDeadline = (): void => {
    this.deadlineTimer = undefined;
    if (this.settled) return;
    const t = this.current;
    if (t && !t.over) this.endTry(t, 'timeout');
    const detail = this.deadlineBound === 'client' ? 'the caller\'s deadline passed' : `the call exceeded the upstream timeout of ${this.rt.plan.timeoutMs} ms`;
    if (this.committed) return this.failCommitted(undefined, GRPC_STATUS.DEADLINE_EXCEEDED, 'SLUICE_ERR_OUTBOUND_TIMEOUT', detail);
    this.fail('SLUICE_ERR_OUTBOUND_TIMEOUT', detail);
  };

  private relayTrailersOnly(headers: IncomingHttpHeaders | Record<string, string>): void {
    const code = parseGrpcStatus(headers['grpc-status']);
    if (this.canRespond()) this.down.respond(relayedHeaders(headers as IncomingHttpHeaders, 200), { endStream: true });
    this.settle(grpcCodeName(code).toLowerCase(), code);
  }

  /** The sidecar answers before any response: trailers-only. */
  private fail(code: OutboundErrorCode, detail?: string): void {
    if (this.settled) return;
    const spec = OUTBOUND_ERRORS[code];
    const t = this.current;
    if (t && !t.over) this.endTry(t, 'cancelled');
    trailersOnly(this.down, 200, spec.grpcStatus, `${detail ?? spec.message} (${code})`);
    this.settle(code);
  }

  /** The response started: the status goes in trailers after what the app already has. */
  private failCommitted(t: Try | undefined, grpcStatus: number, code: OutboundErrorCode, detail: string): void {
    if (t && !t.over) this.endTry(t, 'reset');
    this.upTrailersOut = { 'grpc-status': String(grpcStatus), 'grpc-message': encodeGrpcMessage(`${detail} (${code})`) };
    if (this.downWritable()) this.down.end();
    this.settle(code);
  }

  private settle(outcome: string, grpcCode?: number): void {
    if (this.settled) return;
    this.settled = true;
    if (this.permit) {
      if (outcome === 'cancelled') this.permit.cancel();
      else this.permit.done(breakerOutcome(outcome, grpcCode));
    }
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.dropHeld();
    this.buffer = undefined;
    this.replayable = false;
    this.rt.callEnded(outcome, (this.rt.clock.now() - this.startedAt) / 1000);
    const down = this.down;
    if (!down.readableEnded && !down.closed) {
      down.removeListener('data', this.onDownData);
      down.resume();
    }
  }

  private downWritable(): boolean {
    return !this.down.closed && !this.down.destroyed && !this.down.writableEnded;
  }

  private canRespond(): boolean {
    return this.downWritable() && !this.down.headersSent;
  }
}

function trailersOnly(stream: ServerHttp2Stream, httpStatus: number, code: number, message: string, extra: Record<string, string> = {}): void {
  if (stream.closed || stream.destroyed || stream.headersSent) return;
  stream.respond({ ':status': httpStatus, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message), ...extra }, { endStream: true });
  if (!stream.readableEnded) {
    stream.resume();
    stream.close(h2.NGHTTP2_NO_ERROR);
  }
}

function errorCode(err: Error | undefined): string {
  const e = err as (Error & { code?: string; cause?: { code?: string } }) | undefined;
  return e?.cause?.code ?? e?.code ?? 'stream closed';
}
