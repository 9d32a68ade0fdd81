import type { Server } from 'node:http';
import { createServer } from '../http/node-http.ts';
import type { PolicyStore } from '../config/policy-store.ts';
import type { SidecarMetrics } from '../metrics.ts';

export interface ReadinessCheck {
  name: string;
  /** ok=false makes /readyz answer 503; `details` is shown either way. */
  check(): { ok: boolean; details?: unknown };
}

/**
 * The admin port (`--admin`): liveness, readiness with details, the active config, metrics.
 * It never sits on the request path and does not share a server with it, so a flood of app
 * traffic cannot starve the probes.
 */
export function createAdminServer(opts: {
  store: PolicyStore;
  metrics: SidecarMetrics;
  readiness: () => ReadinessCheck[];
  configView: () => unknown;
  // The request is passed too (the live page's /v1/live reads its Origin for CORS).
  extraRoutes?: Map<string, (res: import('node:http').ServerResponse, req: import('node:http').IncomingMessage) => void>;
}): Server {
  return createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) => {
      const text = JSON.stringify(body, null, 2);
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(text);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: 'method not allowed' });
    switch (path) {
      case '/healthz':
        return json(200, { status: 'ok' });
      case '/readyz': {
        const checks = opts.readiness().map((c) => ({ name: c.name, ...c.check() }));
        const ok = opts.store.loaded && checks.every((c) => c.ok);
        return json(ok ? 200 : 503, { status: ok ? 'ready' : 'not ready', config: opts.store.loaded ? 'loaded' : 'waiting', checks });
      }
      case '/config':
        return json(200, opts.configView());
      case '/metrics': {
        const text = await opts.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': opts.metrics.registry.contentType });
        return res.end(text);
      }
      default: {
        const extra = opts.extraRoutes?.get(path ?? '');
        if (extra) return extra(res, req);
        return json(404, { error: `no admin endpoint ${path}`, endpoints: ['/healthz', '/readyz', '/config', '/metrics'] });
      }
    }
  });
}
