import { listenOn } from '../../../lib/net.ts';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from '../http/node-http.ts';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { Pool } from '../http/undici-pool.ts';
import type { Logger } from '../../../lib/log.ts';
import { connectionTokens, isHopByHop, responseHeaders } from '../http/hop-by-hop.ts';
import type { Endpoint } from './endpoint.ts';
import { breakerOutcome, OUTBOUND_ERRORS, type OutboundErrorCode } from './outbound-errors.ts';
import { isRejection, type Permit } from '../policy-engine/engine.ts';
import { httpRejection } from '../policy-engine/responses.ts';
import { decideRetry, isIdempotent, type TryOutcome } from './retry-decision.ts';
import type { TryResult, UpstreamRuntime } from './upstream-runtime.ts';

/** A request body up to this size is kept for replay; a larger one is streamed and never retried. */
export const HTTP_REPLAY_BUFFER_BYTES = 64 * 1024;

/**
 * An Upstream's HTTP/1.1 listener: each request goes to the endpoint the balancer picks, over a
 * keep-alive pool per endpoint (undici), retried per the policy: idempotent methods on the
 * outcomes it names, any method when the try never connected (nothing was sent).
 */
export class OutboundHttpListener {
  private readonly rt: UpstreamRuntime;
  private readonly logger: Logger;
  private readonly server: Server;
  private readonly pools = new Map<string, Pool>();
  private closing = false;

  constructor(rt: UpstreamRuntime, logger: Logger) {
    this.rt = rt;
    this.logger = logger;
    this.server = createServer((req, res) => void new OutboundHttpCall(this, rt, req, res).start().catch((err: Error) => {
      logger.error('outbound http call failed', { err });
      if (!res.headersSent) reply(res, 'SLUICE_ERR_OUTBOUND_PROTOCOL', 'internal error');
      else res.destroy();
    }));
    this.server.headersTimeout = 30_000;
    this.server.requestTimeout = 0; // the upstream timeout bounds each call instead
    this.server.keepAliveTimeout = 5_000;
  }

  get isClosing(): boolean {
    return this.closing;
  }

  listen(): Promise<AddressInfo> {
    const { host, port } = this.rt.plan.listen;
    return listenOn(this.server, host, port);
  }

  pool(ep: Endpoint): Pool {
    let p = this.pools.get(ep.address);
    if (!p) {
      p = new Pool(`http://${ep.address}`, { connections: 128, pipelining: 1, keepAliveTimeout: 4_000, keepAliveMaxTimeout: 30_000, connectTimeout: 5_000, bodyTimeout: 0 });
      p.on('connectionError', () => {});
      this.pools.set(ep.address, p);
    }
    return p;
  }

  endpointRemoved(ep: Endpoint): void {
    const p = this.pools.get(ep.address);
    this.pools.delete(ep.address);
    void p?.close().catch(() => {});
  }

  async close(graceMs: number): Promise<void> {
    this.closing = true;
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const timer = setTimeout(() => this.server.closeAllConnections(), graceMs);
    await stopped;
    clearTimeout(timer);
    await Promise.all([...this.pools.values()].map((p) => p.destroy().catch(() => {})));
  }
}

class OutboundHttpCall {
  private readonly listener: OutboundHttpListener;
  private readonly rt: UpstreamRuntime;
  private readonly req: IncomingMessage;
  private readonly res: ServerResponse;
  private readonly startedAt: number;
  private readonly abort = new AbortController();
  private settled = false;
  private permit: Permit | undefined;
  private status: number | undefined;

  constructor(listener: OutboundHttpListener, rt: UpstreamRuntime, req: IncomingMessage, res: ServerResponse) {
    this.listener = listener;
    this.rt = rt;
    this.req = req;
    this.res = res;
    this.startedAt = rt.clock.now();
  }

  async start(): Promise<void> {
    const { rt, req, res } = this;
    if (this.listener.isClosing) return this.fail('SLUICE_ERR_OUTBOUND_SHUTTING_DOWN');
    if (rt.guard) {
      // Client-side rate limits and breakers (match.upstream) decide before any try.
      const d = await rt.guard.check({
        protocol: 'http', method: req.method ?? 'GET', path: (req.url ?? '/').split('?')[0] as string, upstream: rt.plan.id,
        header: (name) => { const v = req.headers[name]; return v === undefined ? undefined : Array.isArray(v) ? v.join(',') : v; },
      }, '127.0.0.1');
      if (isRejection(d)) {
        const r = httpRejection(d);
        res.writeHead(r.status, { ...r.headers, 'content-length': Buffer.byteLength(r.body) });
        res.end(r.body);
        rt.callEnded('rejected', (rt.clock.now() - this.startedAt) / 1000);
        this.settled = true;
        return;
      }
      this.permit = d;
    }
    rt.callStarted();
    res.on('close', () => {
      if (!res.writableFinished) this.abort.abort(Object.assign(new Error('the app went away'), { code: 'SLUICE_ERR_CLIENT_GONE' }));
    });
    const deadlineAt = this.startedAt + rt.plan.timeoutMs;
    const overall = setTimeout(() => this.abort.abort(Object.assign(new Error('upstream timeout'), { code: 'SLUICE_ERR_OUTBOUND_TIMEOUT' })), rt.plan.timeoutMs);
    try {
      // Bounded replay buffer: a body that fits is kept whole; a larger one streams once.
      const { buffered, rest } = await readUpTo(req, HTTP_REPLAY_BUFFER_BYTES);
      const method = req.method ?? 'GET';
      const headers = forwardHeaders(req);
      const tried = new Set<Endpoint>();
      for (let n = 1; ; n++) {
        if (this.abort.signal.aborted) return this.aborted();
        const ep = rt.pick(tried);
        if (!ep) return this.fail(n === 1 ? 'SLUICE_ERR_OUTBOUND_NO_ENDPOINTS' : 'SLUICE_ERR_OUTBOUND_CONNECT', n === 1 ? `upstream ${rt.plan.id} has no ready endpoint` : undefined);
        tried.add(ep);
        const left = deadlineAt - rt.clock.now();
        const perTry = rt.plan.retry.perTryTimeoutMs;
        const body = rest ? Readable.from(concatStreams(buffered, rest)) : buffered.length > 0 ? Buffer.concat(buffered) : null;
        const tryStart = rt.clock.now();
        rt.tryStarted(ep);
        let outcome: TryOutcome;
        let result: TryResult;
        let response: Dispatcher.ResponseData | undefined;
        try {
          response = await this.listener.pool(ep).request({
            path: req.url ?? '/', method: method as Dispatcher.HttpMethod, headers, body,
            signal: this.abort.signal,
            headersTimeout: perTry !== undefined && perTry < left ? perTry : Math.max(1, left),
          });
        } catch (err) {
          const code = (err as { code?: string }).code ?? '';
          if (this.abort.signal.aborted) {
            rt.tryEnded(ep, 'cancelled');
            return this.aborted();
          }
          [outcome, result] = classify(code);
          rt.tryEnded(ep, result);
          const decision = decideRetry(rt.plan.retry, outcome, { tries: n, replayable: rest === undefined, idempotent: isIdempotent(method), timeLeftMs: deadlineAt - rt.clock.now() }, rt.random);
          if (decision.retry && rt.acquireRetry()) {
            await delay(decision.delayMs, this.abort.signal);
            continue;
          }
          if (outcome.kind === 'connect-failure') return this.fail('SLUICE_ERR_OUTBOUND_CONNECT', `cannot connect to ${ep.address}: ${code}`);
          if (outcome.kind === 'try-timeout') return this.fail(perTry !== undefined && perTry < left ? 'SLUICE_ERR_OUTBOUND_TRY_TIMEOUT' : 'SLUICE_ERR_OUTBOUND_TIMEOUT');
          return this.fail('SLUICE_ERR_OUTBOUND_RESET', `${ep.address}: ${code}`);
        }
        const latency = rt.clock.now() - tryStart;
        const status = response.statusCode;
        rt.tryEnded(ep, status >= 500 ? 'failure' : 'ok', latency);
        if (rt.plan.retry.httpStatuses[status] === 1) {
          const decision = decideRetry(rt.plan.retry, { kind: 'http-status', status }, { tries: n, replayable: rest === undefined, idempotent: isIdempotent(method), timeLeftMs: deadlineAt - rt.clock.now() }, rt.random);
          if (decision.retry && rt.acquireRetry()) {
            await response.body.dump().catch(() => {});
            await delay(decision.delayMs, this.abort.signal);
            continue;
          }
        }
        return await this.relay(response);
      }
    } finally {
      clearTimeout(overall);
    }
  }

  private async relay(response: Dispatcher.ResponseData): Promise<void> {
    const { res } = this;
    this.status = response.statusCode;
    res.writeHead(response.statusCode, responseHeaders(response.headers));
    try {
      for await (const chunk of response.body) {
        if (!res.write(chunk)) await new Promise<void>((resolve) => res.once('drain', resolve));
      }
      res.end();
      this.settle(`${Math.floor(response.statusCode / 100)}xx`);
    } catch {
      // The endpoint died mid-body (or the call timed out): the response started, so no retry.
      res.destroy();
      this.settle(this.abort.signal.aborted ? 'SLUICE_ERR_OUTBOUND_TIMEOUT' : 'SLUICE_ERR_OUTBOUND_RESET');
    }
  }

  private aborted(): void {
    const code = (this.abort.signal.reason as { code?: string } | undefined)?.code;
    if (code === 'SLUICE_ERR_OUTBOUND_TIMEOUT') return this.fail('SLUICE_ERR_OUTBOUND_TIMEOUT', `the call exceeded the upstream timeout of ${this.rt.plan.timeoutMs} ms`);
    this.settle('cancelled');
  }

  private fail(code: OutboundErrorCode, detail?: string): void {
    reply(this.res, code, detail);
    this.settle(code);
  }

  private settle(outcome: string): void {
    if (this.settled) return;
    this.settled = true;
    if (this.permit) {
      if (outcome === 'cancelled') this.permit.cancel();
      else this.permit.done(breakerOutcome(outcome, undefined, this.status));
    }
    this.rt.callEnded(outcome, (this.rt.clock.now() - this.startedAt) / 1000);
  }
}

function classify(code: string): [TryOutcome, TryResult] {
  switch (code) {
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return [{ kind: 'connect-failure' }, 'connect_failure'];
    case 'UND_ERR_HEADERS_TIMEOUT':
      return [{ kind: 'try-timeout' }, 'timeout'];
    default:
      return [{ kind: 'reset' }, 'reset'];
  }
}

function reply(res: ServerResponse, code: OutboundErrorCode, detail?: string): void {
  if (res.headersSent || res.destroyed) return;
  const spec = OUTBOUND_ERRORS[code];
  const body = JSON.stringify({ error: detail ?? spec.message, code });
  res.writeHead(spec.httpStatus, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** The request headers for the endpoint: hop-by-hop fields dropped, host left to undici. */
function forwardHeaders(req: IncomingMessage): Record<string, string | string[]> {
  const listed = connectionTokens(req.headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in req.headers) {
    if (isHopByHop(name) || listed?.has(name) || name === 'host' || name === 'content-length') continue;
    const v = req.headers[name];
    if (v !== undefined) out[name] = v;
  }
  if (req.headers['content-length'] !== undefined) out['content-length'] = req.headers['content-length'];
  return out;
}

async function readUpTo(req: IncomingMessage, limit: number): Promise<{ buffered: Buffer[]; rest: AsyncIterator<Buffer> | undefined }> {
  const buffered: Buffer[] = [];
  let size = 0;
  const it = req[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  for (;;) {
    const { value, done } = await it.next();
    if (done) return { buffered, rest: undefined };
    buffered.push(value);
    size += value.length;
    if (size > limit) return { buffered, rest: it };
  }
}

async function* concatStreams(head: Buffer[], rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield* head;
  for (;;) {
    const { value, done } = await rest.next();
    if (done) return;
    yield value;
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
