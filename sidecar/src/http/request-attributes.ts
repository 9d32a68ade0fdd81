import type { IncomingMessage } from 'node:http';
import type { RequestAttributes } from '../../../lib/policy/match.ts';
import type { Protocol } from '../../../lib/policy/types.ts';

/** The matcher's view of an HTTP request or WebSocket upgrade; reads headers lazily. */
export class HttpRequestAttributes implements RequestAttributes {
  readonly protocol: Protocol;
  readonly method: string;
  readonly path: string;
  readonly grpcMethod = undefined;
  private readonly req: IncomingMessage;

  constructor(req: IncomingMessage, protocol: Protocol) {
    this.req = req;
    this.protocol = protocol;
    this.method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    this.path = q === -1 ? url : url.slice(0, q);
  }

  header(name: string): string | undefined {
    const v = this.req.headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  }
}
