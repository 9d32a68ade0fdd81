/**
 * The HTTPS handler on its own: what it answers to well-formed and malformed requests, which path
 * means which opt-in, its metrics, and an in-place certificate swap.
 */
import https from 'node:https';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, createServingCert } from '../../src/certs/x509.ts';
import { compileInjectionConfig } from '../../src/injection/injection-config.ts';
import { startWebhookServer, type WebhookServer } from '../../src/injection/webhook-server.ts';

const DNS = 'sluice-webhook.sluice-system.svc';
const validity = { notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000) };
const ca = createCa('test CA', validity);
const config = compileInjectionConfig({ image: 'ghcr.io/sluice-dev/sluice-proxy:0.1.0', operatorAddress: 'sluice-discovery.sluice-system.svc:15010' });
const registry = new Registry();
let server: WebhookServer;

beforeAll(async () => {
  server = await startWebhookServer({ host: '127.0.0.1', port: 0, cert: createServingCert(ca, [DNS], validity), config, registry });
});
afterAll(() => server.close());

function call(method: string, path: string, body?: string, caPem = ca.certPem): Promise<{ status: number; json: any; serial: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: server.port, method, path, ca: caPem, servername: DNS, agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined, serial: (res.socket as import('node:tls').TLSSocket).getPeerCertificate().serialNumber }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const review = (object: unknown, extra: Record<string, unknown> = {}) => JSON.stringify({
  apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview',
  request: { uid: 'u-1', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'shop', object, ...extra },
});
const pod = (annotations?: Record<string, string>) => ({ metadata: { generateName: 'web-', ...(annotations ? { annotations } : {}) }, spec: { containers: [{ name: 'app', image: 'a' }] } });

describe('webhook server', () => {
  it('patches on /mutate-pods (namespace opted in), with the request uid', async () => {
    const { status, json } = await call('POST', '/mutate-pods', review(pod()));
    expect(status).toBe(200);
    expect(json.response).toMatchObject({ uid: 'u-1', allowed: true, patchType: 'JSONPatch' });
    const ops = JSON.parse(Buffer.from(json.response.patch, 'base64').toString());
    expect(ops[0]).toMatchObject({ op: 'add', path: '/spec/initContainers' });
  });

  it('on /mutate-pods/annotated injects only annotated pods', async () => {
    expect((await call('POST', '/mutate-pods/annotated', review(pod()))).json.response).toEqual({ uid: 'u-1', allowed: true });
    expect((await call('POST', '/mutate-pods/annotated', review(pod({ 'sluice.dev/inject': 'true' })))).json.response.patchType).toBe('JSONPatch');
  });

  it('denies with a 400 status and the reason', async () => {
    const { json } = await call('POST', '/mutate-pods', review(pod({ 'sluice.dev/proxy-cpu-limit': '1e3' })));
    expect(json.response).toMatchObject({ uid: 'u-1', allowed: false, status: { code: 400, reason: 'BadRequest' } });
    expect(json.response.status.message).toMatch(/^sluice: annotation sluice.dev\/proxy-cpu-limit: "1e3" is not a Kubernetes quantity/);
  });

  it('allows anything that is not a pod CREATE, unchanged', async () => {
    expect((await call('POST', '/mutate-pods', review(pod(), { operation: 'UPDATE' }))).json.response).toEqual({ uid: 'u-1', allowed: true });
    expect((await call('POST', '/mutate-pods', review(pod(), { kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }))).json.response).toEqual({ uid: 'u-1', allowed: true });
  });

  it('answers malformed requests with HTTP errors, not crashes', async () => {
    expect((await call('POST', '/mutate-pods', '{nope')).status).toBe(400);
    expect((await call('POST', '/mutate-pods', JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } }))).status).toBe(400);
    expect((await call('POST', '/mutate-pods', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }))).status).toBe(400);
    expect((await call('GET', '/mutate-pods')).status).toBe(405);
    expect((await call('POST', '/other', '{}')).status).toBe(404);
    expect((await call('GET', '/healthz')).status).toBe(200);
    expect((await call('GET', '/readyz')).status).toBe(200);
  });

  it('counts its decisions', async () => {
    const text = await registry.metrics();
    expect(text).toMatch(/sluice_injection_requests_total\{result="injected",reason=""\} [1-9]/);
    expect(text).toMatch(/sluice_injection_requests_total\{result="skipped",reason="NotOptedIn"\} 1/);
    expect(text).toMatch(/sluice_injection_requests_total\{result="denied",reason="SLUICE_ERR_INVALID_ANNOTATION"\} 1/);
    expect(text).toMatch(/sluice_injection_requests_total\{result="error",reason="BadRequest"\} 3/);
  });

  it('swaps its certificate in place: new handshakes get the new one', async () => {
    const before = (await call('GET', '/healthz')).serial;
    const ca2 = createCa('second CA', validity);
    server.setCertificate(createServingCert(ca2, [DNS], validity));
    const after = await call('GET', '/healthz', undefined, ca2.certPem);
    expect(after.status).toBe(200);
    expect(after.serial).not.toBe(before);
    await expect(call('GET', '/healthz', undefined, ca.certPem)).rejects.toThrow(/certificate/);
  });
});

describe('webhook server caps', () => {
  let capped: WebhookServer;
  beforeAll(async () => {
    capped = await startWebhookServer({ host: '127.0.0.1', port: 0, cert: createServingCert(ca, [DNS], validity), config, maxBodyBytes: 1024, maxConcurrent: 1 });
  });
  afterAll(() => capped.close());

  function open(): { req: import('node:http').ClientRequest; answer: Promise<number> } {
    let req!: import('node:http').ClientRequest;
    const answer = new Promise<number>((resolve, reject) => {
      req = https.request({ host: '127.0.0.1', port: capped.port, method: 'POST', path: '/mutate-pods', ca: ca.certPem, servername: DNS, agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
    });
    return { req, answer };
  }

  it('answers a body over the cap with 413', async () => {
    const { req, answer } = open();
    req.end('x'.repeat(5_000));
    expect(await answer).toBe(413);
  });

  it('answers 429 past the concurrency cap, and serves again once the first is done', async () => {
    const first = open();
    first.req.write(review(pod()).slice(0, 20)); // headers and part of the body: in flight
    await new Promise((resolve) => setTimeout(resolve, 200));
    const second = open();
    second.req.end(review(pod()));
    expect(await second.answer).toBe(429);
    first.req.end(review(pod()).slice(20));
    expect(await first.answer).toBe(200);
    const third = open();
    third.req.end(review(pod()));
    expect(await third.answer).toBe(200);
  });
});
