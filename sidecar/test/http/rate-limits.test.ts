import { request } from 'node:http';
import { fetch } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type TestApp } from '../../../test/helpers/app-server.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';

const policy = (rules: string, mode = 'Enforce') => `
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  mode: ${mode}
  rules:
${rules}`;

let app: TestApp;
let sc: RunningSidecar | undefined;
beforeAll(async () => {
  app = await startApp();
});
afterAll(() => app.close());
afterEach(async () => {
  await sc?.stop(100);
  sc = undefined;
});

async function start(yaml: string) {
  sc = await startSidecar(yaml, { appHttp: app.hostPort, labels: { app: 'web' } });
  return sc;
}

async function statuses(url: string, n: number, init: Parameters<typeof fetch>[1] = {}): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(url, init);
    await res.arrayBuffer();
    out.push(res.status);
  }
  return out;
}

describe('local rate limits on HTTP', () => {
  it('a token bucket with no key admits the burst, then answers 429 with Retry-After and RateLimit headers', async () => {
    const { url } = await start(policy(`
    - name: all
      limit: {requests: 1, per: 1m, burst: 3}`));
    expect(await statuses(`${url}/a`, 3)).toEqual([200, 200, 200]);
    const before = app.received.length;
    const res = await fetch(`${url}/a`);
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(res.headers.get('ratelimit-policy')).toBe('"all";q=3;w=60');
    expect(res.headers.get('ratelimit')).toMatch(/^"all";r=0;t=\d+$/);
    expect(await res.json()).toMatchObject({ code: 'SLUICE_ERR_RATE_LIMITED', rule: 'shop/api/all' });
    expect(app.received.length).toBe(before); // the rejected request never reached the app
  });

  it('a sliding window keyed by header counts each header value apart', async () => {
    const { url } = await start(policy(`
    - name: per-user
      match: {paths: [{type: Prefix, value: /api/}]}
      limit: {requests: 2, per: 1m, algorithm: SlidingWindow}
      key: {source: Header, name: x-user-id}`));
    const as = (user: string) => ({ headers: { 'x-user-id': user } });
    expect(await statuses(`${url}/api/x`, 3, as('alice'))).toEqual([200, 200, 429]);
    expect(await statuses(`${url}/api/x`, 2, as('bob'))).toEqual([200, 200]);
    expect(await statuses(`${url}/other`, 3, as('alice'))).toEqual([200, 200, 200]); // not matched
  });

  it('keyed by path, and by remote address', async () => {
    const { url } = await start(policy(`
    - name: per-path
      match: {protocol: http, methods: [GET]}
      limit: {requests: 1, per: 1m}
      key: {source: Path}
    - name: per-client
      match: {protocol: http, methods: [POST]}
      limit: {requests: 1, per: 1m}
      key: {source: RemoteAddress}`));
    expect(await statuses(`${url}/p1`, 2)).toEqual([200, 429]);
    expect(await statuses(`${url}/p2`, 1)).toEqual([200]);
    const postFrom = (localAddress: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(`${url}/x`, { method: 'POST', localAddress, agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
    expect([await postFrom('127.0.0.1'), await postFrom('127.0.0.1')]).toEqual([200, 429]);
    expect(await postFrom('127.0.0.2')).toBe(200);
  });

  it('DryRun counts what would be rejected and rejects nothing', async () => {
    const { url, admin } = await start(policy(`
    - name: all
      limit: {requests: 1, per: 1m}`, 'DryRun'));
    expect(await statuses(`${url}/d`, 4)).toEqual([200, 200, 200, 200]);
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    expect(metrics).toMatch(/sluice_ratelimit_decisions_total\{rule="shop\/api\/all",scope="Local",decision="would_limit"\} 3/);
    expect(metrics).toMatch(/sluice_ratelimit_decisions_total\{rule="shop\/api\/all",scope="Local",decision="allowed"\} 1/);
    expect(metrics).toMatch(/sluice_requests_total\{direction="inbound",protocol="http",route="shop\/api\/all",decision="would_limit"\} 3/);
  });

  it('applies only the policies whose selector matches --labels', async () => {
    sc = await startSidecar(policy(`
    - name: all
      limit: {requests: 1, per: 1m}`), { appHttp: app.hostPort, labels: { app: 'other' } });
    expect(await statuses(`${sc.url}/n`, 3)).toEqual([200, 200, 200]);
  });
});
