import type { IncomingMessage } from 'node:http';
import type { RequestAttributes } from '../../../lib/policy/match.ts';
import type { Protocol } from '../../../lib/policy/types.ts';

/**
 * The matcher's view of an HTTP request or WebSocket upgrade; reads headers lazily. `path` is the
 * normalised path (path-normalisation.ts), the one the app receives, never the raw target.
 */
export class HttpRequestAttributes implements RequestAttributes {
  readonly protocol: Protocol;
  readonly method: string;
  readonly path: string;
  readonly grpcMethod = undefined;
  private readonly req: IncomingMessage;

  constructor(req: IncomingMessage, protocol: Protocol, path: string) {
    this.req = req;
    this.protocol = protocol;
    this.method = req.method ?? 'GET';
    this.path = path;
  }

  header(name: string): string | undefined {
    const v = this.req.headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  }
}
