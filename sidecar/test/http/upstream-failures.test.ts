import { request } from 'node:http';
import { fetch } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { startApp, type TestApp } from '../../../test/helpers/app-server.ts';
import { freePort } from '../../../lib/net.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';

let sc: RunningSidecar | undefined;
let app: TestApp | undefined;
afterEach(async () => {
  await sc?.stop(100);
  await app?.close();
  sc = undefined;
  app = undefined;
});

describe('when the app misbehaves', () => {
  it('connection refused → 502', async () => {
    sc = await startSidecar('', { appHttp: `127.0.0.1:${await freePort()}` });
    const res = await fetch(`${sc.url}/`);
    expect(res.status).toBe(502);
    expect(((await res.json()) as { code: string }).code).toBe('SLUICE_ERR_UPSTREAM_CONNECT');
  });

  it('a WebSocket upgrade to an unreachable app gets the same answer from the same error table', async () => {
    sc = await startSidecar('', { appHttp: `127.0.0.1:${await freePort()}` });
    const { rawRequest, statusOf } = await import('../../../test/helpers/raw-http.ts');
    const raw = await rawRequest(Number(new URL(sc.url).port), [
      'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    ]);
    expect(statusOf(raw)).toBe(502);
    expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { code: string }).toMatchObject({ code: 'SLUICE_ERR_UPSTREAM_CONNECT' });
  });

  it('no answer within --upstream-timeout → 504', async () => {
    app = await startApp(() => true); // never answers
    sc = await startSidecar('', { appHttp: app.hostPort, upstreamTimeoutMs: 200 });
    const res = await fetch(`${sc.url}/`);
    expect(res.status).toBe(504);
    expect(((await res.json()) as { code: string }).code).toBe('SLUICE_ERR_UPSTREAM_TIMEOUT');
  });

  it('a reset mid-response ends that client connection, and the proxy serves the next one', async () => {
    app = await startApp((req, res) => {
      if (req.url === '/reset') {
        res.writeHead(200, { 'content-length': '100000' });
        res.write('partial');
        setTimeout(() => req.socket.destroy(), 50);
        return true;
      }
      return false;
    });
    sc = await startSidecar('', { appHttp: app.hostPort });
    const outcome = await new Promise<string>((resolve) => {
      const req = request(`${sc!.url}/reset`, (res) => {
        let got = '';
        res.on('data', (c: Buffer) => (got += c.toString()));
        res.on('end', () => resolve(`ended cleanly with ${got.length} bytes`));
        res.on('error', () => resolve(`aborted after ${got}`));
        res.on('aborted', () => resolve(`aborted after ${got}`));
      });
      req.on('error', (e) => resolve(`error ${e.message}`));
      req.end();
    });
    expect(outcome).toMatch(/aborted after partial|error/);
    const ok = await fetch(`${sc.url}/fine`);
    expect(ok.status).toBe(200);
  });
});
