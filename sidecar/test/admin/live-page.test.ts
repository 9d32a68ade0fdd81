import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUserService, userServiceClient, type UserServiceClient } from '../../../examples/user-service/user-service.ts';
import { eventually } from '../../../test/helpers/eventually.ts';
import { spawnSidecar, type SidecarProcess } from '../../../test/helpers/sidecar-process.ts';
import type { LiveSnapshot } from '../../src/admin/live-page.ts';

/** The admin port's live page and its JSON, on a real sluice-proxy process in front of a gRPC app. */
describe('admin live page: GET /ui and GET /v1/live', () => {
  let app: Awaited<ReturnType<typeof startUserService>>;
  let sidecar: SidecarProcess;
  let client: UserServiceClient;

  beforeAll(async () => {
    app = await startUserService();
    sidecar = await spawnSidecar(['--config', 'examples/user-service/sluice.yaml', '--labels', 'app=user-service', '--app-grpc', `127.0.0.1:${app.port}`, '--id', 'live-test', '--log-level', 'warn']);
    client = userServiceClient(`127.0.0.1:${sidecar.ports.grpc}`);
  });
  afterAll(async () => {
    client?.close();
    sidecar?.kill('SIGTERM');
    await sidecar?.exited;
    await app?.close();
  });

  it('/v1/live counts calls by decision and code, and shows the circuit state', async () => {
    const calls = Array.from({ length: 7 }, (_, i) => new Promise<void>((resolve) => client.GetUser({ id: String(i) }, {}, () => resolve())));
    await Promise.all(calls);
    const res = await fetch(`${sidecar.admin}/v1/live`);
    expect(res.status).toBe(200);
    const live = (await res.json()) as LiveSnapshot;
    expect(live).toMatchObject({ id: 'live-test', labels: { app: 'user-service' }, elections: [] });
    expect(live.grpc['example.UserService/GetUser']).toEqual({ OK: 7 });
    expect(live.requests.grpc?.allowed).toBe(7);
    expect(live.rateLimits['shop/user-api/get-user-rpc']?.allowed).toBe(7);
    expect(live.circuits['shop/user-api/backend']).toEqual({ state: 'closed', opened: 0, closed: 0 });
  });

  it('/v1/live carries the last minutes: requests per second by decision, latency to the app, circuit state', async () => {
    // The calls of the test above ended up in one of the one-second samples.
    const h = await eventually(async () => {
      const history = ((await (await fetch(`${sidecar.admin}/v1/live`)).json()) as LiveSnapshot).history;
      expect(history?.requests.allowed?.some((rate) => rate > 0)).toBe(true);
      return history!;
    }, { timeoutMs: 15_000, intervalMs: 250 });
    expect(h.intervalMs).toBe(1_000);
    expect(h.windowMs).toBe(300_000);
    expect(h.at.length).toBeGreaterThanOrEqual(1);
    expect(h.at.length).toBeLessThanOrEqual(300);
    for (const column of [h.requests.allowed, h.latencyMs.p50, h.latencyMs.p99, h.gauges.circuits?.['shop/user-api/backend']?.state]) expect(column).toHaveLength(h.at.length);
    expect(h.requests.allowed!.every((rate) => rate >= 0)).toBe(true);
    expect(h.latencyMs.p99.some((ms) => ms !== null && ms > 0)).toBe(true);
    expect(h.gauges.circuits?.['shop/user-api/backend']?.state?.at(-1)).toBe(0);
    // Nothing here reports adaptive limits or upstreams: no such section, so the page draws no such plot.
    expect(Object.keys(h.gauges)).toEqual(['circuits']);
    // gRPC calls to the app are timed like HTTP ones.
    const metrics = await (await fetch(`${sidecar.admin}/metrics`)).text();
    expect(metrics).toMatch(/sluice_upstream_duration_seconds_count\{protocol="grpc",outcome="ok"\} 7\n/);
  });

  it('answers CORS only for loopback origins, and only on /v1/live', async () => {
    const loopback = await fetch(`${sidecar.admin}/v1/live`, { headers: { origin: 'http://localhost:3000' } });
    expect(loopback.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
    await loopback.arrayBuffer();
    for (const origin of ['https://example.com', 'http://127.0.0.1.example.com', 'null']) {
      const r = await fetch(`${sidecar.admin}/v1/live`, { headers: { origin } });
      expect(r.headers.get('access-control-allow-origin'), origin).toBeNull();
      await r.arrayBuffer();
    }
    const metrics = await fetch(`${sidecar.admin}/metrics`, { headers: { origin: 'http://localhost:3000' } });
    expect(metrics.headers.get('access-control-allow-origin')).toBeNull();
    await metrics.arrayBuffer();
    const post = await fetch(`${sidecar.admin}/v1/live`, { method: 'POST', headers: { origin: 'http://localhost:3000' } });
    expect(post.status).toBe(405);
    await post.arrayBuffer();
  });

  it('/ui is one self-contained HTML page that polls /v1/live', async () => {
    const res = await fetch(`${sidecar.admin}/ui?peers=http://127.0.0.1:1`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    // Only the page's own inline script and style run, allowed by their hashes.
    expect(csp).not.toContain('unsafe-inline');
    const html = await res.text();
    const script = html.match(/<script>([\s\S]*?)<\/script>/)?.[1] ?? '';
    expect(csp).toContain(`script-src 'sha256-${createHash('sha256').update(script).digest('base64')}'`);
    expect(html).toContain('/v1/live');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|innerHTML/);
    expect(Buffer.byteLength(html)).toBeLessThan(16 * 1024);
  });
});
