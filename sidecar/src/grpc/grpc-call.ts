import { constants as h2, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Clock } from '../../../lib/clock.ts';
import type { CallOutcome, Permit } from '../policy-engine/engine.ts';
import { GRPC_PROXY_ERRORS, type GrpcProxyErrorCode } from './grpc-errors.ts';
import { MessageScanner } from './grpc-framing.ts';
import type { GrpcMetrics, MethodMetrics } from './grpc-metrics.ts';
import { relayedHeaders, upstreamRequestHeaders, type GrpcCallHead } from './grpc-request.ts';
import { GRPC_STATUS, encodeGrpcMessage, grpcStatusFromHttp, grpcStatusFromRstCode, parseGrpcStatus } from './grpc-status.ts';
import { formatGrpcTimeout, type CallDeadline } from './grpc-timeout.ts';

/** Everything one admitted call needs; built by the listener once the policy engine said yes. */
export interface CallContext {
  readonly downstream: ServerHttp2Stream;
  readonly headers: IncomingHttpHeaders;
  readonly head: GrpcCallHead;
  readonly permit: Permit;
  readonly deadline: CallDeadline | undefined;
  /** clock.now() when the request headers arrived: deadlines and durations count from here. */
  readonly startedAt: number;
  readonly clock: Clock;
  readonly maxMessageBytes: number;
  readonly method: MethodMetrics;
  readonly metrics: GrpcMetrics;
  readonly upstream: { session(): ClientHttp2Session; hasConnected(s: ClientHttp2Session): boolean };
}

const END_STREAM = h2.NGHTTP2_FLAG_END_STREAM;
const noop = () => {};

/**
 * One gRPC call relayed between the client's stream and a stream to the app, bytes untouched.
 *
 * Both directions are piped by hand with backpressure: a side that cannot take more pauses the
 * other, and since a paused HTTP/2 stream stops granting window, flow control holds end to end
 * and nothing here buffers more than a stream window and a writable high-water mark.
 *
 * The call settles exactly once — `permit.done`/`permit.cancel` and the method metrics — when the
 * first of these happens: the app's status is relayed, the proxy answers a status itself (bad
 * framing, deadline, upstream failure), or the client goes away (cancel: RST_STREAM to the app).
 */
export class ForwardedCall {
  private readonly ctx: CallContext;
  private readonly down: ServerHttp2Stream;
  private readonly scanner: MessageScanner;
  /** The app's response messages, held to the same limit as the client's. */
  private readonly upScanner: MessageScanner;
  private up: ClientHttp2Stream | undefined;
  private session: ClientHttp2Session | undefined;
  private upError: Error | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Response headers have gone to the client, so any status now travels in trailers. */
  private responded = false;
  private settled = false;
  /** The trailers the client will get: the app's, or the proxy's own status. */
  private trailers: Record<string, string | string[] | number> | undefined;
  private upTrailers: IncomingHttpHeaders | undefined;

  constructor(ctx: CallContext) {
    this.ctx = ctx;
    this.down = ctx.downstream;
    // The limit counts what the app will receive: compressed requests are inflated to be counted.
    const encoding = ctx.headers['grpc-encoding'];
    this.scanner = new MessageScanner(ctx.maxMessageBytes, { countInflated: { encoding: typeof encoding === 'string' ? encoding.toLowerCase() : undefined } });
    this.upScanner = new MessageScanner(ctx.maxMessageBytes);
  }

  start(): void {
    const { ctx, down } = this;
    down.on('close', this.onDownClose);
    down.on('error', noop); // a client reset surfaces here and as 'close', which is what we act on
    down.on('wantTrailers', this.onWantTrailers);

    let remaining: number | undefined;
    if (ctx.deadline) {
      remaining = ctx.deadline.ms - (ctx.clock.now() - ctx.startedAt);
      if (remaining <= 0) return this.onDeadline();
      this.timer = setTimeout(this.onDeadline, remaining);
    }
    try {
      this.session = ctx.upstream.session();
      this.up = this.session.request(
        upstreamRequestHeaders(ctx.headers, ctx.head.path, remaining === undefined ? undefined : formatGrpcTimeout(remaining)),
        { endStream: false },
      );
    } catch (err) {
      // A session torn down between pool lookup and request: the app is not reachable right now.
      this.upError = err as Error;
      return this.fail('SLUICE_ERR_GRPC_UPSTREAM_CONNECT', { connectError: true });
    }
    const up = this.up;
    up.on('response', this.onResponse);
    up.on('trailers', this.onUpTrailers);
    up.on('data', this.onUpData);
    up.on('end', this.onUpEnd);
    up.on('close', this.onUpClose);
    up.on('error', this.onUpError);
    down.on('data', this.onDownData);
    down.on('end', this.onDownEnd);
  }

  // Client to app: frames are scanned as they pass, never buffered, so an oversized or malformed
  // message is answered by the proxy before the app has it whole.

  private readonly onDownData = (chunk: Buffer): void => {
    if (this.settled) return; // answered already: the rest of the request is discarded
    const err = this.scanner.push(chunk);
    if (err) {
      if (err.kind === 'too_large') {
        return this.fail('SLUICE_ERR_GRPC_MESSAGE_TOO_LARGE', {}, `message of ${err.size} bytes exceeds the limit of ${err.limit}`);
      }
      if (err.kind === 'inflates_too_large') {
        return this.fail('SLUICE_ERR_GRPC_MESSAGE_TOO_LARGE', {}, `compressed message inflates past the limit of ${err.limit}`);
      }
      if (err.kind === 'bad_compression') return this.fail('SLUICE_ERR_GRPC_MALFORMED_MESSAGE', {}, err.reason);
      return this.fail('SLUICE_ERR_GRPC_MALFORMED_MESSAGE', {}, `compressed flag ${err.flag} is neither 0 nor 1`);
    }
    const up = this.up as ClientHttp2Stream;
    if (!up.write(chunk)) {
      this.down.pause();
      up.once('drain', this.resumeDown);
    }
  };

  private readonly resumeDown = (): void => {
    if (!this.settled) this.down.resume();
  };

  private readonly onDownEnd = (): void => {
    if (this.settled) return;
    if (!this.scanner.atBoundary) return this.fail('SLUICE_ERR_GRPC_TRUNCATED_MESSAGE', {});
    this.up?.end();
  };

  private readonly onDownClose = (): void => {
    if (this.settled) return;
    // The client left (RST_STREAM or connection loss) before the call ended: tell the app to stop.
    this.settled = true;
    this.clearTimer();
    if (this.up && !this.up.closed) this.up.close(h2.NGHTTP2_CANCEL);
    this.ctx.permit.cancel();
    this.ctx.method.finish(GRPC_STATUS.CANCELLED, this.elapsedSeconds());
  };

  // App to client: the app's headers, messages and trailers are relayed as they come; the
  // trailers tell the breaker how the call went.

  private readonly onResponse = (headers: IncomingHttpHeaders, flags: number): void => {
    if (this.settled) return;
    const status = Number(headers[':status'] ?? 0); // a number at run time, typed as a header
    if (status !== 200) {
      return this.fail('SLUICE_ERR_GRPC_UPSTREAM_PROTOCOL', { status }, `the app answered HTTP ${status}`, grpcStatusFromHttp(status));
    }
    if (flags & END_STREAM) {
      // Trailers-only: the status is in these headers; relay them as they are and settle.
      const code = parseGrpcStatus(headers['grpc-status']);
      this.responded = true;
      if (this.downWritable()) this.down.respond(relayedHeaders(headers, 200), { endStream: true });
      this.settle(code, { grpcCode: code });
      this.closeDownReadable();
      return;
    }
    this.responded = true;
    if (this.downWritable()) this.down.respond(relayedHeaders(headers, 200), { waitForTrailers: true });
  };

  private readonly onUpData = (chunk: Buffer): void => {
    if (this.settled) return;
    const err = this.upScanner.push(chunk);
    if (err) {
      // Whole messages ahead of the refused one still reach the client; the refused one's prefix
      // does not (unless it began in an earlier chunk, already relayed: the status ends it anyway).
      const before = this.upScanner.failedAt;
      if (before > 0 && this.downWritable()) this.down.write(chunk.subarray(0, before));
      if (err.kind === 'too_large') {
        return this.fail('SLUICE_ERR_GRPC_MESSAGE_TOO_LARGE', {}, `response message of ${err.size} bytes exceeds the limit of ${err.limit}`);
      }
      return this.fail('SLUICE_ERR_GRPC_UPSTREAM_PROTOCOL', {}, `the app sent a message with compressed flag ${err.kind === 'bad_flag' ? err.flag : '?'}`);
    }
    if (!this.down.write(chunk)) {
      (this.up as ClientHttp2Stream).pause();
      this.down.once('drain', this.resumeUp);
    }
  };

  private readonly resumeUp = (): void => {
    if (!this.settled) this.up?.resume();
  };

  private readonly onUpTrailers = (t: IncomingHttpHeaders): void => {
    this.upTrailers = t;
  };

  private readonly onUpEnd = (): void => {
    if (this.settled) return;
    // 'trailers' is emitted as soon as they arrive, before 'end' (which waits for the data).
    const t = this.upTrailers;
    if (!this.responded || t === undefined) {
      return this.fail('SLUICE_ERR_GRPC_UPSTREAM_PROTOCOL', {}, 'the app ended the call without a grpc-status');
    }
    const code = parseGrpcStatus(t['grpc-status']);
    this.trailers = relayedHeaders(t);
    if (this.downWritable()) this.down.end();
    this.settle(code, { grpcCode: code });
    this.closeDownReadable();
  };

  private readonly onUpError = (err: Error): void => {
    this.upError = err;
  };

  private readonly onUpClose = (): void => {
    if (this.settled) return;
    const up = this.up as ClientHttp2Stream;
    const session = this.session as ClientHttp2Session;
    // node:http2 defers 'close' until 'end' has been read, so a clean close lands in onUpEnd;
    // this is only a guard should that ordering ever change.
    if (up.rstCode === h2.NGHTTP2_NO_ERROR && this.upTrailers) return this.onUpEnd();
    if (!this.ctx.upstream.hasConnected(session)) {
      return this.fail('SLUICE_ERR_GRPC_UPSTREAM_CONNECT', { connectError: true }, `cannot reach the app: ${errorCode(this.upError)}`);
    }
    if (this.upError && up.rstCode !== h2.NGHTTP2_REFUSED_STREAM && session.destroyed) {
      // The connection to the app dropped mid-call: what grpc-js itself reports as UNAVAILABLE.
      return this.fail('SLUICE_ERR_GRPC_UPSTREAM_RESET', {}, `connection to the app lost: ${errorCode(this.upError)}`, GRPC_STATUS.UNAVAILABLE);
    }
    const code = grpcStatusFromRstCode(up.rstCode ?? h2.NGHTTP2_INTERNAL_ERROR);
    this.fail('SLUICE_ERR_GRPC_UPSTREAM_RESET', { grpcCode: code }, `the app reset the stream (HTTP/2 error ${up.rstCode})`, code);
  };

  private readonly onWantTrailers = (): void => {
    this.down.sendTrailers(this.trailers ?? { 'grpc-status': String(GRPC_STATUS.INTERNAL), 'grpc-message': 'no status (SLUICE_ERR_GRPC_UPSTREAM_PROTOCOL)' });
  };

  private readonly onDeadline = (): void => {
    this.timer = undefined;
    const breaker = this.ctx.deadline?.bound === 'breaker';
    this.fail(breaker ? 'SLUICE_ERR_GRPC_BREAKER_TIMEOUT' : 'SLUICE_ERR_GRPC_DEADLINE', { timedOut: breaker });
  };

  /**
   * The proxy answers the call itself: trailers-only if nothing was sent yet, else trailers after
   * what the client already has. The app's stream is reset so it stops working on the call.
   */
  private fail(error: GrpcProxyErrorCode, outcome: CallOutcome, detail?: string, grpcStatus?: number): void {
    if (this.settled) return;
    const spec = GRPC_PROXY_ERRORS[error];
    const code = grpcStatus ?? spec.grpcStatus;
    this.ctx.metrics.error(error);
    const status = { 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(`${detail ?? spec.message} (${error})`) };
    if (this.downWritable()) {
      if (!this.responded) {
        this.responded = true;
        this.down.respond({ ':status': 200, 'content-type': 'application/grpc', ...status }, { endStream: true });
      } else {
        this.trailers = status;
        this.down.end();
      }
    }
    if (this.up && !this.up.closed) this.up.close(h2.NGHTTP2_CANCEL);
    this.settle(code, outcome.grpcCode === undefined && !outcome.connectError && !outcome.timedOut ? { ...outcome, grpcCode: code } : outcome);
    this.closeDownReadable();
  }

  private settle(code: number, outcome: CallOutcome): void {
    this.settled = true;
    this.clearTimer();
    this.ctx.permit.done(outcome);
    const label = outcome.timedOut ? 'timeout' : outcome.connectError ? 'connect_error' : code === 0 ? 'ok' : 'error';
    this.ctx.method.finishForwarded(code, label, this.elapsedSeconds());
  }

  /**
   * Once the final status is on its way, a client still sending is told to stop with
   * RST_STREAM(NO_ERROR) after the response (RFC 9113 §8.1), rather than having its bytes read
   * and dropped for as long as it cares to send them.
   */
  private closeDownReadable(): void {
    const down = this.down;
    if (down.readableEnded || down.closed) return;
    down.removeListener('data', this.onDownData);
    down.resume();
    down.close(h2.NGHTTP2_NO_ERROR);
  }

  private downWritable(): boolean {
    return !this.down.closed && !this.down.destroyed && !this.down.writableEnded;
  }

  private clearTimer(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private elapsedSeconds(): number {
    return (this.ctx.clock.now() - this.ctx.startedAt) / 1000;
  }
}

function errorCode(err: Error | undefined): string {
  const e = err as (Error & { code?: string; cause?: { code?: string } }) | undefined;
  return e?.cause?.code ?? e?.code ?? 'unknown';
}
