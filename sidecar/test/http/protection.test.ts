import { fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type TestApp } from '../../../test/helpers/app-server.ts';
import { rawRequest, statusOf } from '../../../test/helpers/raw-http.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';

let app: TestApp;
let sc: RunningSidecar;
let port: number;

beforeAll(async () => {
  app = await startApp();
  sc = await startSidecar('', { appHttp: app.hostPort, maxBodyBytes: 1024, headersTimeoutMs: 500 });
  port = Number(new URL(sc.url).port);
});
afterAll(async () => {
  await sc.stop(100);
  await app.close();
});

/** Sends raw bytes and asserts the status and that nothing reached the app. */
async function refused(chunks: string[], status: number, opts?: { gapMs?: number; timeoutMs?: number }) {
  const before = app.received.length;
  const raw = await rawRequest(port, chunks, opts);
  expect(statusOf(raw), raw.slice(0, 200)).toBe(status);
  expect(app.received.length).toBe(before);
}

describe('malformed and abusive requests are answered and never forwarded', () => {
  it('slowloris: headers trickling past the headers timeout get 408', async () => {
    await refused(['GET / HTTP/1.1\r\n', 'Host: x\r\n', 'X-A: 1\r\n', 'X-B: 2\r\n', 'X-C: 3\r\n'], 408, { gapMs: 300, timeoutMs: 8_000 });
  });

  it('oversized headers get 431', async () => {
    await refused([`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`], 431);
  });

  it('a Content-Length body over the cap gets 413', async () => {
    await refused([`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n${'a'.repeat(5000)}`], 413);
  });

  it('a chunked body over the cap gets 413', async () => {
    const chunk = `400\r\n${'a'.repeat(1024)}\r\n`;
    const before = app.received.length;
    const raw = await rawRequest(port, [`POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`, chunk, chunk, '0\r\n\r\n']);
    expect(statusOf(raw)).toBe(413);
    // The app may have seen the start of the request, but never a complete one.
    expect(app.received.slice(before).every((r) => r.body.length <= 1024)).toBe(true);
  });

  it('Content-Length together with Transfer-Encoding gets 400', async () => {
    await refused(['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'], 400);
  });

  it('a Transfer-Encoding not ending in chunked gets 400', async () => {
    await refused(['POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\nabcd'], 400);
  });

  it('obs-fold (a folded header line) gets 400', async () => {
    await refused(['GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n\r\n'], 400);
  });

  it('bare LF line endings get 400', async () => {
    await refused(['GET / HTTP/1.1\nHost: x\n\n'], 400);
  });

  it('garbage gets 400', async () => {
    await refused(['\x16\x03\x01\x02\x00 not http at all\r\n\r\n'], 400);
  });

  it('the proxy is alive and forwarding after all of the above', async () => {
    const res = await fetch(`${sc.url}/still-here`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok /still-here');
    const metrics = await (await fetch(`${sc.admin}/metrics`)).text();
    expect(metrics).toMatch(/sluice_client_errors_total\{protocol="http",status="431"\} 1/);
  });
});

describe('forwarding', () => {
  it('sets X-Forwarded-* and drops hop-by-hop headers, both ways', async () => {
    const raw = await rawRequest(port, [
      'GET /fwd?q=1 HTTP/1.1\r\nHost: shop.example\r\nConnection: close, X-Secret-Hop\r\nX-Secret-Hop: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Forwarded-For: 10.1.1.1\r\nX-Keep: yes\r\n\r\n',
    ]);
    expect(statusOf(raw)).toBe(200);
    const seen = app.received.at(-1)!;
    expect(seen.url).toBe('/fwd?q=1');
    // The client is not a trusted proxy (none are, by default): its X-Forwarded-For is replaced.
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe('shop.example');
    expect(seen.headers.host).toBe('shop.example');
    expect(seen.headers['x-keep']).toBe('yes');
    expect(seen.headers['x-secret-hop']).toBeUndefined();
    expect(seen.headers['keep-alive']).toBeUndefined();
    expect(seen.headers.te).toBeUndefined();
  });

  it('streams request and response bodies', async () => {
    const body = 'x'.repeat(1000);
    const res = await fetch(`${sc.url}/echo`, { method: 'POST', body });
    expect(res.status).toBe(200);
    expect(app.received.at(-1)!.body).toBe(body);
  });
});
