import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Router, sendJson } from '../../src/local-api/router.ts';

let server: Server;
let port: number;

beforeAll(async () => {
  const router = new Router();
  router.add({ method: 'POST', pattern: '/v1/locks/:resource', handler: (_req, res, params) => sendJson(res, 200, params) });
  server = createServer((req, res) => void router.handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** A raw request line: fetch would refuse or re-encode the malformed paths this test needs. */
function post(path: string): Promise<{ status: number; body: Record<string, string> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, string> }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('local API router', () => {
  it('decodes percent-escapes in path parameters', async () => {
    expect(await post('/v1/locks/orders%2F42')).toEqual({ status: 200, body: { resource: 'orders/42' } });
  });

  it.each(['/v1/locks/%zz', '/v1/locks/a%E2', '/v1/locks/%'])('answers a malformed escape (%s) with 400, not 500', async (path) => {
    const { status, body } = await post(path);
    expect(status).toBe(400);
    expect(body.code).toBe('SLUICE_ERR_BAD_PATH');
  });
});
