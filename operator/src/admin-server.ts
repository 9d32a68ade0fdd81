/**
 * The operator's admin port: /healthz (the process is alive), /readyz (caches synced; the body
 * says whether this replica leads), /metrics (Prometheus). Followers are ready too: they serve
 * nothing but are warm, and a sidecar that reaches one is told to try another address.
 */
import { createServer, type Server } from 'node:http';
import type { OperatorMetrics } from './metrics.ts';

export interface AdminState {
  synced(): boolean;
  leader(): { isLeader: boolean; holder: string | undefined };
  sidecars(): number;
}

export function createAdminServer(metrics: OperatorMetrics, state: AdminState): Server {
  return createServer(async (req, res) => {
    const json = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    switch ((req.url ?? '/').split('?')[0]) {
      case '/healthz':
        return json(200, { status: 'ok' });
      case '/readyz': {
        const synced = state.synced();
        return json(synced ? 200 : 503, { status: synced ? 'ready' : 'caches syncing', ...state.leader(), sidecars: state.sidecars() });
      }
      case '/metrics': {
        const text = await metrics.registry.metrics();
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        return res.end(text);
      }
      default:
        return json(404, { error: 'not found', code: 'SLUICE_ERR_NOT_FOUND' });
    }
  });
}
