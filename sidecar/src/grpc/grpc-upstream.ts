import http2, { constants as h2, type ClientHttp2Session } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../../lib/log.ts';

export interface UpstreamOptions {
  /** The app's gRPC address, `host:port`. */
  readonly target: string;
  /** HTTP/2 connections to the app; calls are spread over them round-robin. */
  readonly sessions: number;
  /** Per-stream receive window advertised to the app: bounds what one call can buffer here. */
  readonly initialWindowSize: number;
  /** Connection receive window: bounds what all calls on one connection can buffer together. */
  readonly connectionWindowSize: number;
  /** PING a connection that has started no call for this long (0: never). */
  readonly keepaliveIntervalMs: number;
  /** Destroy a connection whose PING is unanswered after this long. */
  readonly keepaliveTimeoutMs: number;
  readonly logger: Logger;
  /** Told each time a connection is dropped for an unanswered PING. */
  readonly onKeepaliveTimeout?: () => void;
}

/** The most the keepalive interval backs off to after an app complains of too many pings. */
const MAX_KEEPALIVE_INTERVAL_MS = 2 * 60 * 60_000;

/**
 * The HTTP/2 connections to the app, shared by every proxied call (many streams per connection,
 * as gRPC intends). A connection that fails, closes or receives GOAWAY leaves the pool at once, so
 * the next call dials afresh; calls already on it finish or fail on their own.
 *
 * Keepalive: a connection that has started no call for `keepaliveIntervalMs` is sent a PING; if
 * the app does not answer within `keepaliveTimeoutMs` (process frozen, host gone without a FIN),
 * the connection is destroyed — its calls end UNAVAILABLE rather than hang — and the next call
 * dials a new one. A GOAWAY(ENHANCE_YOUR_CALM) — grpc-go's answer to pings it finds too frequent —
 * doubles the interval, as gRPC clients do.
 */
export class UpstreamSessions {
  private readonly opts: UpstreamOptions;
  private readonly slots: Array<ClientHttp2Session | undefined>;
  private readonly connected = new WeakSet<ClientHttp2Session>();
  private readonly all = new Set<ClientHttp2Session>();
  private readonly lastCall = new WeakMap<ClientHttp2Session, number>();
  private keepaliveIntervalMs: number;
  private next = 0;

  constructor(opts: UpstreamOptions) {
    if (!(opts.sessions >= 1)) throw new RangeError('upstream sessions must be ≥ 1');
    if (!(opts.keepaliveIntervalMs >= 0)) throw new RangeError('keepaliveIntervalMs must be ≥ 0');
    if (!(opts.keepaliveTimeoutMs >= 1)) throw new RangeError('keepaliveTimeoutMs must be ≥ 1');
    this.opts = opts;
    this.keepaliveIntervalMs = opts.keepaliveIntervalMs;
    this.slots = new Array(opts.sessions).fill(undefined);
  }

  /** A session to open the next call on (possibly still connecting: requests queue until it is up). */
  session(): ClientHttp2Session {
    const i = this.next;
    this.next = (i + 1) % this.slots.length;
    const existing = this.slots[i];
    const s = existing && !existing.closed && !existing.destroyed ? existing : this.dial(i);
    this.lastCall.set(s, performance.now());
    return s;
  }

  /** The keepalive interval now in force (it doubles on each GOAWAY(ENHANCE_YOUR_CALM)). */
  get keepaliveInterval(): number {
    return this.keepaliveIntervalMs;
  }

  /** Whether the session ever completed its handshake: if not, its calls failed to connect. */
  hasConnected(session: ClientHttp2Session): boolean {
    return this.connected.has(session);
  }

  /** Closes every connection, letting streams still open finish; destroys them after `graceMs`. */
  async close(graceMs: number): Promise<void> {
    this.slots.fill(undefined);
    const closing = [...this.all].map((s) => new Promise<void>((resolve) => {
      if (s.destroyed) return resolve();
      s.once('close', () => resolve());
      s.close();
    }));
    const timer = setTimeout(() => {
      for (const s of this.all) s.destroy();
    }, graceMs);
    await Promise.all(closing);
    clearTimeout(timer);
  }

  private dial(i: number): ClientHttp2Session {
    const { target, initialWindowSize, connectionWindowSize, logger } = this.opts;
    const s = http2.connect(`http://${target}`, { settings: { initialWindowSize, enablePush: false } });
    this.slots[i] = s;
    this.all.add(s);
    const leave = () => {
      if (this.slots[i] === s) this.slots[i] = undefined;
    };
    let timer: NodeJS.Timeout | undefined;
    const schedule = (ms: number) => {
      timer = setTimeout(keepalive, ms);
      timer.unref();
    };
    const keepalive = () => {
      timer = undefined;
      if (s.closed || s.destroyed) return;
      const interval = this.keepaliveIntervalMs;
      const idle = performance.now() - (this.lastCall.get(s) ?? 0);
      if (idle < interval) return schedule(interval - idle);
      const deadline = setTimeout(() => {
        if (s.destroyed) return;
        leave();
        logger.warn('the app left a keepalive PING unanswered: closing the connection', { target, timeoutMs: this.opts.keepaliveTimeoutMs });
        this.opts.onKeepaliveTimeout?.();
        // With an error, so calls still on it end UNAVAILABLE (connection lost) and say why.
        s.destroy(Object.assign(new Error(`keepalive PING unanswered for ${this.opts.keepaliveTimeoutMs} ms`), { code: 'SLUICE_ERR_GRPC_UPSTREAM_KEEPALIVE' }));
      }, this.opts.keepaliveTimeoutMs);
      deadline.unref();
      const sent = s.ping((err) => {
        clearTimeout(deadline);
        if (!err && !s.closed && !s.destroyed) schedule(this.keepaliveIntervalMs);
      });
      if (!sent) {
        clearTimeout(deadline);
        schedule(interval);
      }
    };
    s.once('connect', () => {
      this.connected.add(s);
      if (connectionWindowSize > 65_535) s.setLocalWindowSize(connectionWindowSize);
      if (this.keepaliveIntervalMs > 0) schedule(this.keepaliveIntervalMs);
    });
    // Each stream reports its own failure to its call; the session error is only logged.
    s.on('error', (err) => logger.debug('grpc upstream connection failed', { target, err }));
    s.on('goaway', (code: number) => {
      leave();
      if (code === h2.NGHTTP2_ENHANCE_YOUR_CALM && this.keepaliveIntervalMs > 0) {
        this.keepaliveIntervalMs = Math.min(this.keepaliveIntervalMs * 2, MAX_KEEPALIVE_INTERVAL_MS);
      }
    });
    s.once('close', () => {
      if (timer) clearTimeout(timer);
      leave();
      this.all.delete(s);
    });
    return s;
  }
}
