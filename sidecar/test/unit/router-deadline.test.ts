import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readBody, Router, sendJson } from '../../src/local-api/router.ts';

// The local API's whole-request deadline lives in the router, per route: a body that never
// finishes is answered 408, while a long-lived route (a lock held by a stream) keeps its request open.
let server: Server;
let base: string;

beforeAll(async () => {
  const router = new Router({ requestTimeoutMs: 300 });
  router.add({ method: 'POST', pattern: '/echo', handler: async (req, res) => sendJson(res, 200, { bytes: (await readBody(req)).length }) });
  router.add({
    method: 'POST', pattern: '/stream', longLived: true, handler: (req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      req.on('data', (c: Buffer) => res.write(`${JSON.stringify({ got: c.length })}\n`));
      req.on('end', () => res.end());
    },
  });
  server = createServer((req, res) => void router.handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => {
  server.closeAllConnections();
  server.close(() => r());
}));

function slowPost(path: string, chunks: number, everyMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method: 'POST' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.flushHeaders();
    let sent = 0;
    const t = setInterval(() => {
      if (req.destroyed) return clearInterval(t);
      if (++sent > chunks) {
        clearInterval(t);
        req.end();
        return;
      }
      req.write('x');
    }, everyMs);
  });
}

it('answers 408 to a body that has not arrived within the deadline', async () => {
  const r = await slowPost('/echo', 100, 50);
  expect(r.status).toBe(408);
  expect(JSON.parse(r.body)).toMatchObject({ code: 'SLUICE_ERR_REQUEST_TIMEOUT' });
});

it('lets a long-lived route keep its request open past the deadline', async () => {
  const r = await slowPost('/stream', 12, 60); // ~720 ms, more than twice the deadline
  expect(r.status).toBe(200);
  expect(r.body.trim().split('\n')).toHaveLength(12);
});

it('serves a body that arrives in time', async () => {
  const r = await slowPost('/echo', 2, 20);
  expect(r).toMatchObject({ status: 200 });
  expect(JSON.parse(r.body)).toEqual({ bytes: 2 });
});
