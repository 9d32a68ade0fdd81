import type { IncomingMessage, ServerResponse } from 'node:http';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, params: Record<string, string>) => void | Promise<void>;

export interface Route {
  method: string;
  /** A path with `:name` segments, e.g. `/v1/queues/:name/tasks`. */
  pattern: string;
  handler: RouteHandler;
  /** A call that stays open by design (a lock held by a stream): no whole-request deadline. */
  longLived?: boolean;
}

interface CompiledRoute {
  method: string;
  re: RegExp;
  names: string[];
  handler: RouteHandler;
  longLived: boolean;
}

/**
 * The sidecar's local API (`--local-api`, for the app beside it) is served by features that each
 * contribute routes: queues, leadership, locks. Unknown paths get 404, known paths with another
 * method 405 with `Allow`.
 */
export class Router {
  private readonly routes: CompiledRoute[] = [];
  /** How long a request (headers and body) may take to arrive, except on long-lived routes. */
  private readonly requestTimeoutMs: number;

  constructor({ requestTimeoutMs = 60_000 }: { requestTimeoutMs?: number } = {}) {
    this.requestTimeoutMs = requestTimeoutMs;
  }

  add(route: Route): void {
    const names: string[] = [];
    const source = route.pattern
      .split('/')
      .map((seg) => {
        if (!seg.startsWith(':')) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        names.push(seg.slice(1));
        return '([^/]+)';
      })
      .join('/');
    this.routes.push({ method: route.method, re: new RegExp(`^${source}$`), names, handler: route.handler, longLived: route.longLived ?? false });
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] as string;
    const allowed: string[] = [];
    for (const r of this.routes) {
      const m = r.re.exec(path);
      if (!m) continue;
      if (r.method !== req.method) {
        allowed.push(r.method);
        continue;
      }
      const params: Record<string, string> = {};
      for (let i = 0; i < r.names.length; i++) {
        // A malformed escape ("%zz", a lone "%E2") is the client's mistake: 400, not a handler crash.
        const value = decodePathSegment(m[i + 1] as string);
        if (value === undefined) {
          sendJson(res, 400, { error: `malformed percent-escape in ${r.names[i]}`, code: 'SLUICE_ERR_BAD_PATH' });
          return;
        }
        params[r.names[i] as string] = value;
      }
      if (!r.longLived) deadline(req, res, this.requestTimeoutMs);
      await r.handler(req, res, params);
      return;
    }
    if (allowed.length > 0) sendJson(res, 405, { error: 'method not allowed', code: 'SLUICE_ERR_METHOD' }, { allow: allowed.join(', ') });
    else sendJson(res, 404, { error: `no route for ${path}`, code: 'SLUICE_ERR_NOT_FOUND' });
  }
}

function decodePathSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** A request whose body has not fully arrived in time is answered 408 and its connection closed. */
function deadline(req: IncomingMessage, res: ServerResponse, ms: number): void {
  if (req.complete) return;
  const timer = setTimeout(() => {
    if (req.complete) return;
    if (!res.headersSent) sendJson(res, 408, { error: 'request body not received in time', code: 'SLUICE_ERR_REQUEST_TIMEOUT' }, { connection: 'close' });
    req.destroy();
  }, ms);
  timer.unref();
  const clear = () => clearTimeout(timer);
  req.once('end', clear);
  res.once('close', clear);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Reads a request body up to `limit` bytes; rejects with a SLUICE_ERR_BODY_TOO_LARGE error past it. */
export function readBody(req: IncomingMessage, limit = 1 << 20): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.destroy();
        reject(Object.assign(new Error(`body over ${limit} bytes`), { code: 'SLUICE_ERR_BODY_TOO_LARGE' }));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
