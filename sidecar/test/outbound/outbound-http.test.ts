/** The outbound HTTP/1.1 path with real node:http servers as endpoints and fetch as the app. */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/eventually.ts';
import { startOutbound, type OutboundUnderTest } from './harness.ts';

interface HttpEndpoint {
  address: string;
  seen: { method: string; body: string; headers: IncomingMessage['headers'] }[];
  status: number;
  delayMs: number;
  server: Server;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function endpoint(name: string, status = 200): Promise<HttpEndpoint> {
  const e: HttpEndpoint = { address: '', seen: [], status, delayMs: 0, server: undefined as never };
  e.server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      e.seen.push({ method: req.method ?? '', body, headers: req.headers });
      setTimeout(() => {
        res.writeHead(e.status, { 'content-type': 'text/plain', 'x-served-by': name });
        res.end(`${name} ${req.method} ${req.url} ${body.length}`);
      }, e.delayMs);
    });
  });
  await new Promise<void>((resolve) => e.server.listen(0, '127.0.0.1', resolve));
  e.address = `127.0.0.1:${(e.server.address() as AddressInfo).port}`;
  cleanups.push(() => new Promise<void>((resolve) => {
    e.server.close(() => resolve());
    e.server.closeAllConnections();
  }));
  return e;
}

async function setup(addresses: string[], extra: Record<string, unknown> = {}): Promise<OutboundUnderTest> {
  const ob = await startOutbound('http', addresses, extra);
  cleanups.push(() => ob.stop());
  return ob;
}

const RETRY = { attempts: 3, backoff: { initial: '5ms', max: '20ms' }, budget: { percent: 100, minPerSecond: 100 } };

describe('outbound HTTP/1.1', () => {
  it('spreads requests over the endpoints, relaying status, headers and bodies', async () => {
    const eps = await Promise.all(['a', 'b', 'c'].map((n) => endpoint(n)));
    const ob = await setup(eps.map((e) => e.address), { loadBalancer: { algorithm: 'RoundRobin' } });
    const served: string[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`http://${ob.listen}/users/${i}?x=1`, { method: 'POST', body: 'hello', headers: { 'x-user': 'ada' } });
      expect(res.status).toBe(200);
      served.push(res.headers.get('x-served-by')!);
      expect(await res.text()).toMatch(new RegExp(`^[abc] POST /users/${i}\\?x=1 5$`));
    }
    for (const n of ['a', 'b', 'c']) expect(served.filter((s) => s === n)).toHaveLength(10);
    expect(eps[0]!.seen[0]!.headers['x-user']).toBe('ada');
    // The live page plots the upstream: its endpoints ready and ejected.
    const live = (await (await fetch(`${ob.sc.admin}/v1/live`)).json()) as { upstreams: Record<string, { ready: number; ejected: number }> };
    expect(live.upstreams).toEqual({ 'test/users': { ready: 3, ejected: 0 } });
  });

  it('retries an idempotent request on a 503 elsewhere, but never a POST that was sent', async () => {
    const bad = await endpoint('bad', 503);
    const good = await endpoint('good');
    const ob = await setup([bad.address, good.address], { retry: RETRY, loadBalancer: { algorithm: 'RoundRobin' } });
    for (let i = 0; i < 6; i++) expect((await fetch(`http://${ob.listen}/r`)).status).toBe(200);
    expect(bad.seen.length).toBeGreaterThan(0);
    const posts = await Promise.all(Array.from({ length: 6 }, () => fetch(`http://${ob.listen}/p`, { method: 'POST', body: 'x' }).then((r) => r.status)));
    expect(posts.filter((s) => s === 503).length).toBe(bad.seen.filter((s) => s.method === 'POST').length);
    expect(good.seen.filter((s) => s.method === 'POST').length + bad.seen.filter((s) => s.method === 'POST').length).toBe(6);
  });

  it('retries a POST that never connected, with its body', async () => {
    const good = await endpoint('good');
    const ob = await setup(['127.0.0.1:1', good.address], { retry: RETRY, loadBalancer: { algorithm: 'RoundRobin' } });
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`http://${ob.listen}/p`, { method: 'POST', body: 'payload' });
      expect(res.status).toBe(200);
    }
    expect(good.seen.map((s) => s.body)).toEqual(['payload', 'payload', 'payload', 'payload']);
  });

  it('answers 503 at once with a clear JSON error when no endpoint is ready, 504 on timeout', async () => {
    const slow = await endpoint('slow');
    slow.delayMs = 3_000;
    const ob = await setup([slow.address], { timeout: '300ms' });
    const t = await fetch(`http://${ob.listen}/slow`);
    expect(t.status).toBe(504);
    expect(await t.json()).toMatchObject({ code: 'SLUICE_ERR_OUTBOUND_TIMEOUT' });
    expect(await ob.metric('sluice_outbound_tries_total', { endpoint: slow.address })).toBe(1);
    ob.sc.sidecar.outbound!.runtime('test/users')!.setEndpoints([]);
    // The endpoint's series leave with it (pod churn must not grow the metric set forever).
    expect(await ob.metric('sluice_outbound_tries_total', { endpoint: slow.address })).toBe(0);
    const none = await fetch(`http://${ob.listen}/x`);
    expect(none.status).toBe(503);
    expect(await none.json()).toEqual({ code: 'SLUICE_ERR_OUTBOUND_NO_ENDPOINTS', error: 'upstream test/users has no ready endpoint' });
  });

  it('unbinds a removed Upstream and binds a new one when the config changes', async () => {
    const e = await endpoint('a');
    const ob = await setup([e.address]);
    expect((await fetch(`http://${ob.listen}/`)).status).toBe(200);
    ob.sc.writeConfig('');
    await ob.sc.sidecar.reloadConfig();
    await eventually(async () => expect(await fetch(`http://${ob.listen}/`).then(() => 'open', () => 'closed')).toBe('closed'));
  });
});
