import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetch } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../../../test/helpers/eventually.ts';
import { rawRequest, statusOf } from '../../../test/helpers/raw-http.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';

/**
 * An app that records every request the moment its head arrives (not when its body ends), and
 * every body byte, so a test can prove that nothing of a refused request reached it.
 */
const seen: { method: string; url: string; headers: IncomingHttpHeaders }[] = [];
let bodyBytes = 0;
let app: Server;
let appHostPort: string;
const SLOW_BODY = 'a'.repeat(200_000);

beforeAll(async () => {
  app = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.on('data', (c: Buffer) => (bodyBytes += c.length));
    req.on('end', async () => {
      if (req.url === '/slow') {
        // A response still being written when the client's next bytes arrive.
        res.writeHead(200, { 'content-length': SLOW_BODY.length, 'content-type': 'text/plain' });
        res.write(SLOW_BODY.slice(0, 1000));
        await sleep(400);
        res.end(SLOW_BODY.slice(1000));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`ok ${req.url}`);
    });
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  appHostPort = `127.0.0.1:${(app.address() as AddressInfo).port}`;
});
afterAll(async () => {
  app.closeAllConnections();
  await new Promise((r) => app.close(r));
});

let sc: RunningSidecar | undefined;
afterEach(async () => {
  await sc?.stop(100);
  sc = undefined;
  seen.length = 0;
  bodyBytes = 0;
});
const portOf = () => Number(new URL(sc!.url).port);

const policies = (...docs: string[]) => docs.join('\n---\n');
const breaker = `
apiVersion: sluice.dev/v1alpha1
kind: CircuitBreakerPolicy
metadata: {name: backend, namespace: shop}
spec:
  selector: {}
  rules:
    - name: app
      trip: {consecutiveFailures: 3}
      openDuration: 1m`;
const apiLimit = (key: string) => `
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: api, namespace: shop}
spec:
  selector: {}
  rules:
    - name: api
      match: {paths: [{type: Prefix, value: /api}]}
      limit: {requests: 1, per: 1m}
      key: {source: ${key}}`;

async function send(raw: string): Promise<{ status: number; raw: string }> {
  const out = await rawRequest(portOf(), [raw], { timeoutMs: 5_000 });
  return { status: statusOf(out), raw: out };
}

describe('client errors never reach the app and never count against it', () => {
  it('OPTIONS *, GET * and a duplicate Host are answered 400 and do not open the breaker', async () => {
    sc = await startSidecar(breaker, { appHttp: appHostPort });
    for (let i = 0; i < 3; i++) {
      expect((await send('OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n')).status).toBe(400);
      expect((await send('GET * HTTP/1.1\r\nHost: x\r\n\r\n')).status).toBe(400);
      expect((await send('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n')).status).toBe(400);
    }
    expect(seen).toEqual([]);
    const res = await fetch(`${sc.url}/after`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok /after');
  });

  it('HTTP/0.9, HTTP/1.0 without Host, CONNECT and Connection: Host are answered 400/405, never forwarded', async () => {
    sc = await startSidecar('', { appHttp: appHostPort });
    const cases: [string, number][] = [
      ['GET /\r\n\r\n', 400],
      ['GET / HTTP/1.0\r\n\r\n', 400],
      ['CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 405],
      ['GET / HTTP/1.1\r\nHost: x\r\nConnection: Host\r\n\r\n', 400],
      ['GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Content-Length\r\nContent-Length: 0\r\n\r\n', 400],
      ['GET / HTTP/2.0\r\nHost: x\r\n\r\n', 400],
    ];
    for (const [raw, status] of cases) {
      const r = await send(raw);
      expect(r.status, `${JSON.stringify(raw)} → ${r.raw.slice(0, 120)}`).toBe(status);
      expect(r.raw).toMatch(/"code":"SLUICE_ERR_/);
    }
    expect(seen).toEqual([]);
    // HTTP/1.0 with a Host is fine.
    expect((await send('GET /ten HTTP/1.0\r\nHost: x\r\n\r\n')).status).toBe(200);
    expect(seen.map((s) => s.url)).toEqual(['/ten']);
  });
});

describe('path normalisation: limits match, key and forward the path the app will route', () => {
  it('dot segments, repeated slashes, escaped unreserved characters and the absolute form do not dodge a Prefix /api limit', async () => {
    sc = await startSidecar(apiLimit('None'), { appHttp: appHostPort });
    expect((await send('GET /api/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).status).toBe(200);
    for (const target of ['/./api/x', '/x/../api/x', '//api/x', '/%61pi/x', 'http://host/api/x', '/%2e/api/x']) {
      expect((await send(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).status, target).toBe(429);
    }
    expect(seen.map((s) => s.url)).toEqual(['/api/x']);
  });

  it('the app receives the normalised path, query untouched', async () => {
    sc = await startSidecar('', { appHttp: appHostPort });
    const r = await send('GET /a/./b//c/../%64?q=%2F.. HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(r.status).toBe(200);
    expect(seen.map((s) => s.url)).toEqual(['/a/b/d?q=%2F..']);
  });

  it('Path keys use the normalised path', async () => {
    sc = await startSidecar(apiLimit('Path'), { appHttp: appHostPort });
    expect((await send('GET /api/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).status).toBe(200);
    expect((await send('GET /./api//k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).status).toBe(429);
  });

  it('escaped slashes: rejected by default, unescaped or kept as configured', async () => {
    sc = await startSidecar(apiLimit('None'), { appHttp: appHostPort });
    const rejected = await send('GET /x%2F..%2Fapi/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(rejected.status).toBe(400);
    expect(rejected.raw).toContain('SLUICE_ERR_PATH_ESCAPED_SLASH');
    expect((await send('GET /api%5Cx HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).status).toBe(400);
    expect(seen).toEqual([]);
    await sc.stop(100);

    sc = await startSidecar(apiLimit('None'), { appHttp: appHostPort, pathEscapedSlashes: 'unescape' });
    expect((await send('GET /x%2F..%2Fapi/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).status).toBe(200);
    expect((await send('GET /api/y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).status).toBe(429);
    expect(seen.map((s) => s.url)).toEqual(['/api/x']);
    await sc.stop(100);
    seen.length = 0;

    sc = await startSidecar(apiLimit('None'), { appHttp: appHostPort, pathEscapedSlashes: 'keep' });
    expect((await send('GET /repos/a%2Fb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).status).toBe(200);
    expect(seen.map((s) => s.url)).toEqual(['/repos/a%2Fb']);
  });
});

describe('framing', () => {
  it('garbage pipelined after a request is answered only after the in-flight response, never inside it', async () => {
    sc = await startSidecar('', { appHttp: appHostPort });
    const quick = await rawRequest(portOf(), ['GET /quick HTTP/1.1\r\nHost: x\r\n\r\nBLAH BLAH BLAH\r\n\r\n'], { timeoutMs: 8_000 });
    expect(quick).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n9\r\nok \/quick\r\n0\r\n\r\n(HTTP\/1\.1 400 [^]*)?$/);
    const raw = await rawRequest(portOf(), ['GET /slow HTTP/1.1\r\nHost: x\r\n\r\nBLAH BLAH BLAH\r\n\r\n'], { timeoutMs: 8_000 });
    const headEnd = raw.indexOf('\r\n\r\n');
    expect(raw.slice(0, 300)).toMatch(/^HTTP\/1\.1 200/);
    const body = raw.slice(headEnd + 4, headEnd + 4 + SLOW_BODY.length);
    expect(body).toBe(SLOW_BODY);
    const after = raw.slice(headEnd + 4 + SLOW_BODY.length);
    expect(after === '' || after.startsWith('HTTP/1.1 400')).toBe(true);
  });

  it('nothing of an invalid chunked request reaches the app', async () => {
    sc = await startSidecar('', { appHttp: appHostPort });
    const head = 'POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n';
    const chunk = `400\r\n${'b'.repeat(1024)}\r\n`;
    const invalid = [
      // a bare LF after chunk data
      [head, chunk, chunk, `5\r\nhello\n0\r\n\r\n`],
      // Content-Length in the trailer
      [head, chunk, '0\r\nContent-Length: 10\r\n\r\n'],
      // Transfer-Encoding in the trailer
      [head, chunk, '0\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ];
    for (const chunks of invalid) {
      const raw = await rawRequest(portOf(), chunks, { timeoutMs: 5_000, gapMs: 50 });
      expect(statusOf(raw), raw.slice(0, 200)).toBe(400);
    }
    expect(seen).toEqual([]);
    expect(bodyBytes).toBe(0);
    // A valid chunked body still arrives whole.
    const ok = await rawRequest(portOf(), [head, chunk, '0\r\n\r\n'], { timeoutMs: 5_000 });
    expect(statusOf(ok)).toBe(200);
    expect(seen.map((s) => s.url)).toEqual(['/up']);
    expect(bodyBytes).toBe(1024);
  });
});

describe('forwarding headers and the client address', () => {
  const xHeaders = 'X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\nForwarded: for=6.6.6.6;host=evil.example\r\n';

  it('by default (trust nobody) client-sent X-Forwarded-* are replaced', async () => {
    sc = await startSidecar('', { appHttp: appHostPort });
    expect((await send(`GET /h HTTP/1.1\r\nHost: shop.example\r\n${xHeaders}Connection: close\r\n\r\n`)).status).toBe(200);
    const h = seen[0]!.headers;
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-forwarded-host']).toBe('shop.example');
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h.forwarded).toBeUndefined();
  });

  it('from a trusted proxy they are extended, and RemoteAddress keys count the first untrusted address', async () => {
    sc = await startSidecar(apiLimit('RemoteAddress'), { appHttp: appHostPort, trustedProxies: ['127.0.0.0/8', '10.0.0.0/8'] });
    const from = (xff: string) => send(`GET /api/x HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: ${xff}\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n`);
    expect((await from('203.0.113.7, 10.1.1.1')).status).toBe(200);
    expect(seen[0]!.headers['x-forwarded-for']).toBe('203.0.113.7, 10.1.1.1, 127.0.0.1');
    expect(seen[0]!.headers['x-forwarded-proto']).toBe('https');
    // The same client through another ingress replica: the same partition.
    expect((await from('203.0.113.7, 10.2.2.2')).status).toBe(429);
    // Another client: its own partition; what it wrote left of itself is not believed.
    expect((await from('203.0.113.7, 198.51.100.9, 10.1.1.1')).status).toBe(200);
  });

  it('without trust, RemoteAddress keys ignore X-Forwarded-For', async () => {
    sc = await startSidecar(apiLimit('RemoteAddress'), { appHttp: appHostPort });
    expect((await send('GET /api/x HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.1.1.1\r\nConnection: close\r\n\r\n')).status).toBe(200);
    expect((await send('GET /api/x HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 2.2.2.2\r\nConnection: close\r\n\r\n')).status).toBe(429);
  });
});
