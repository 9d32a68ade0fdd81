import { sendJson, type Route } from '../local-api/router.ts';
import type { WebSocketProxy } from './websocket-proxy.ts';

/**
 * `POST /v1/websocket/drain` on the local API: the app asks its sidecar to start the staggered
 * 1012 drain now and answers when the last close has been sent. On Kubernetes the kubelet stops
 * the app before its native sidecar, and a proxied connection ends with the app's end of it: an
 * app that calls this from its SIGTERM handler (and exits after the answer) lets its clients
 * reconnect spread over the drain window instead of all at once. New upgrades are refused (503)
 * from then on. Loopback only, as the whole local API.
 */
export function websocketDrainRoute(proxy: () => WebSocketProxy | undefined, graceMs: number): Route {
  return {
    method: 'POST',
    pattern: '/v1/websocket/drain',
    handler: async (_req, res) => {
      const p = proxy();
      if (!p) return sendJson(res, 404, { error: 'no HTTP/WebSocket listener (--app-http)', code: 'SLUICE_ERR_NOT_FOUND' });
      await p.closeAll(graceMs);
      sendJson(res, 200, { drained: p.drainInfo?.connections ?? 0, windowMs: p.drainInfo?.windowMs ?? 0 });
    },
  };
}
