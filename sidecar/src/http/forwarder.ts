import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { Pool } from './undici-pool.ts';
import type { CallOutcome } from '../policy-engine/engine.ts';
import type { TrustedProxies } from './client-address.ts';
import { replyError } from './http-errors.ts';
import { forwardedRequestHeaders } from './forwarded-headers.ts';
import { responseHeaders } from './hop-by-hop.ts';
import { trailerProblem } from './request-checks.ts';

export interface ForwardResult {
  outcome: CallOutcome;
  /** 'ok' | 'error' | 'connect_error' | 'timeout' | 'client_gone' | 'body_too_large' | 'client_error' */
  label: string;
}

/**
 * Streams one request to the app and its response back, over a keep-alive undici Pool. undici's
 * low-level dispatch writes response chunks straight into the client's response with
 * backpressure (pause/resume), which measured faster than http-proxy's pipe (bench/README.md).
 * Failures are answered here: connection refused → 502, timeout → 504, body over the cap → 413;
 * an upstream reset after the response began ends that client's connection, nothing more.
 */
export class Forwarder {
  private readonly pool: Pool;
  private readonly upstreamTimeoutMs: number;
  readonly maxBodyBytes: number;

  constructor(opts: { appHttp: string; connections?: number; upstreamTimeoutMs?: number; maxBodyBytes?: number }) {
    this.pool = new Pool(`http://${opts.appHttp}`, {
      connections: opts.connections ?? 256,
      pipelining: 1,
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 30_000,
      connectTimeout: 5_000,
      // The app must start answering within --upstream-timeout (→ 504). undici keeps this timer
      // per connection, so the request path arms no timer of its own unless a breaker sets a
      // shorter call timeout.
      headersTimeout: opts.upstreamTimeoutMs ?? 60_000,
      bodyTimeout: 0,
    });
    // Errors surface per request; an unhandled pool-level 'error' must never crash the sidecar.
    this.pool.on('connectionError', () => {});
    this.upstreamTimeoutMs = opts.upstreamTimeoutMs ?? 60_000;
    this.maxBodyBytes = opts.maxBodyBytes ?? 10 * 1024 * 1024;
  }

  /** `path` is the normalised path and query the app receives (path-normalisation.ts). */
  forward(req: IncomingMessage, res: ServerResponse, path: string, trusted: TrustedProxies, timeoutMs: number | undefined, done: (r: ForwardResult) => void): void {
    const handler = new ForwardHandler(res, done);
    const opts: Dispatcher.DispatchOptions = {
      path,
      method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
      headers: forwardedRequestHeaders(req, trusted),
      body: null,
    };
    if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] !== undefined) {
      // A chunked body can turn out invalid at its last byte (bare LF, framing fields in the
      // trailer): it is read whole, within --max-body, before any of it goes to the app.
      return this.bufferChunked(req, res, handler, opts, timeoutMs);
    }
    if (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') opts.body = req;
    this.dispatch(res, handler, opts, timeoutMs);
  }

  private dispatch(res: ServerResponse, handler: ForwardHandler, opts: Dispatcher.DispatchOptions, timeoutMs: number | undefined): void {
    if (timeoutMs !== undefined && timeoutMs < this.upstreamTimeoutMs) handler.arm(timeoutMs);
    res.on('close', handler.onClientClose);
    this.pool.dispatch(opts, handler);
  }

  private bufferChunked(req: IncomingMessage, res: ServerResponse, handler: ForwardHandler, opts: Dispatcher.DispatchOptions, timeoutMs: number | undefined): void {
    const parts: Buffer[] = [];
    let seen = 0;
    let over = false;
    const onData = (chunk: Buffer) => {
      if (over) return;
      seen += chunk.length;
      if (seen > this.maxBodyBytes) {
        over = true;
        parts.length = 0;
        replyError(res, 'SLUICE_ERR_BODY_TOO_LARGE');
        handler.finishEarly('body_too_large');
        return;
      }
      parts.push(chunk);
    };
    // The client left, or a parse error mid-body ended the request without 'end' (the
    // clientError handler answers that one): nothing was dispatched, nothing is owed to the app.
    const onClose = () => {
      if (!over) handler.finishEarly('client_gone');
    };
    req.on('data', onData);
    res.once('close', onClose);
    req.once('end', () => {
      res.removeListener('close', onClose);
      if (over) return;
      const problem = trailerProblem(req.trailers);
      if (problem) {
        replyError(res, problem);
        handler.finishEarly('client_error');
        return;
      }
      opts.body = parts.length === 1 ? parts[0] : Buffer.concat(parts);
      this.dispatch(res, handler, opts, timeoutMs);
    });
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

class ForwardHandler implements Dispatcher.DispatchHandler {
  private readonly res: ServerResponse;
  private readonly done: (r: ForwardResult) => void;
  private controller: Dispatcher.DispatchController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private finished = false;
  private timedOut = false;
  private status = 0;
  /** Declared response length: a body that arrives in one chunk is sent with res.end(chunk). */
  private expected = -1;
  private ended = false;

  constructor(res: ServerResponse, done: (r: ForwardResult) => void) {
    this.res = res;
    this.done = done;
  }

  arm(ms: number): void {
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller?.abort(Object.assign(new Error('upstream timeout'), { code: 'SLUICE_ERR_UPSTREAM_TIMEOUT' }));
    }, ms);
  }

  /** Settles a request that was answered before it was dispatched. */
  finishEarly(label: 'body_too_large' | 'client_error' | 'client_gone'): void {
    this.finish({}, label);
  }

  onClientClose = (): void => {
    if (this.finished) return;
    this.controller?.abort(Object.assign(new Error('client closed'), { code: 'SLUICE_ERR_CLIENT_GONE' }));
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (statusCode < 200) return; // 1xx informational: Node answers Expect: 100-continue itself
    this.status = statusCode;
    const res = this.res;
    if (res.destroyed) {
      controller.abort(new Error('client gone'));
      return;
    }
    const length = headers['content-length'];
    this.expected = typeof length === 'string' ? Number(length) : -1;
    res.writeHead(statusCode, statusMessage || undefined, responseHeaders(headers));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (chunk.length === this.expected) {
      // The whole body in one chunk (the common small response): one write instead of two.
      this.ended = true;
      this.res.end(chunk);
      return;
    }
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    if (!this.ended) this.res.end();
    this.finish({ status: this.status }, this.status >= 500 ? 'error' : 'ok');
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const res = this.res;
    const code = (err as { code?: string }).code;
    if (this.res.destroyed || code === 'SLUICE_ERR_CLIENT_GONE') {
      this.finish({}, 'client_gone');
      return;
    }
    if (res.headersSent) {
      // The app reset mid-response: the client's response cannot be completed honestly.
      res.destroy();
      this.finish(this.timedOut ? { timedOut: true } : { status: 502 }, this.timedOut ? 'timeout' : 'error');
      return;
    }
    if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') {
      // undici refused the request before sending anything: the client's fault, not the app's.
      replyError(res, 'SLUICE_ERR_BAD_REQUEST');
      this.finish({}, 'client_error');
    } else if (this.timedOut || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
      replyError(res, 'SLUICE_ERR_UPSTREAM_TIMEOUT');
      this.finish({ timedOut: true }, 'timeout');
    } else if (isConnectError(code)) {
      replyError(res, 'SLUICE_ERR_UPSTREAM_CONNECT');
      this.finish({ connectError: true }, 'connect_error');
    } else {
      replyError(res, 'SLUICE_ERR_UPSTREAM_RESET');
      this.finish({ connectError: true }, 'connect_error');
    }
  }

  private finish(outcome: CallOutcome, label: string): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    this.done({ outcome, label });
  }
}

function isConnectError(code: string | undefined): boolean {
  return code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' || code === 'ENOTFOUND' ||
    code === 'UND_ERR_SOCKET' || code === 'EPIPE' || code === 'UND_ERR_CLOSED';
}
