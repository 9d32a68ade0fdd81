import http2, { type ClientHttp2Session } from 'node:http2';
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
  readonly logger: Logger;
}

/**
 * The HTTP/2 connections to the app, shared by every proxied call (many streams per connection,
 * as gRPC intends). A connection that fails, closes or receives GOAWAY leaves the pool at once, so
 * the next call dials afresh; calls already on it finish or fail on their own.
 */
export class UpstreamSessions {
  private readonly opts: UpstreamOptions;
  private readonly slots: Array<ClientHttp2Session | undefined>;
  private readonly connected = new WeakSet<ClientHttp2Session>();
  private readonly all = new Set<ClientHttp2Session>();
  private next = 0;

  constructor(opts: UpstreamOptions) {
    if (!(opts.sessions >= 1)) throw new RangeError('upstream sessions must be ≥ 1');
    this.opts = opts;
    this.slots = new Array(opts.sessions).fill(undefined);
  }

  /** A session to open the next call on (possibly still connecting: requests queue until it is up). */
  session(): ClientHttp2Session {
    const i = this.next;
    this.next = (i + 1) % this.slots.length;
    const s = this.slots[i];
    if (s && !s.closed && !s.destroyed) return s;
    return this.dial(i);
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
    s.once('connect', () => {
      this.connected.add(s);
      if (connectionWindowSize > 65_535) s.setLocalWindowSize(connectionWindowSize);
    });
    // Each stream reports its own failure to its call; the session error is only logged.
    s.on('error', (err) => logger.debug('grpc upstream connection failed', { target, err }));
    s.on('goaway', leave);
    s.once('close', () => {
      leave();
      this.all.delete(s);
    });
    return s;
  }
}
