/**
 * The HTTPS endpoint the API server calls: a thin shell that reads an AdmissionReview, asks the
 * pure patcher, and writes the answer. Two paths, because the API server cannot tell us which
 * webhook of the configuration matched:
 *   POST /mutate-pods            the namespace webhook — only pods in namespaces labelled
 *                                sluice.dev/injection=enabled reach it, so they are opted in;
 *   POST /mutate-pods/annotated  the annotation webhook — every other pod; injected only if it is
 *                                annotated sluice.dev/inject: "true".
 * GET /healthz and /readyz answer kubelet probes (HTTPS, not verified by the kubelet).
 *
 * The certificate is swapped in place with `setSecureContext`: new handshakes use it, open
 * connections finish on the old one, and the process never restarts for a rotation.
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, type Registry } from 'prom-client';
import { silentLogger, type Logger } from '../../../lib/log.ts';
import { admissionResponse, AdmissionReviewError, gatherInput, isPodCreate, parseAdmissionReview } from './admission-review.ts';
import type { InjectionConfig } from './injection-config.ts';
import type { NamespaceCpuRules } from './namespace-cpu-rules.ts';
import { planInjection } from './pod-patcher.ts';

export const MUTATE_PATH = '/mutate-pods';
export const MUTATE_ANNOTATED_PATH = '/mutate-pods/annotated';
// The API server caps request bodies at 3 MiB; anything bigger is not from it.
const MAX_BODY = 6 * 1024 * 1024;

export interface WebhookServerOptions {
  host?: string;
  port: number;
  cert: { certPem: string; keyPem: string };
  config: InjectionConfig;
  logger?: Logger;
  registry?: Registry;
  /** Readiness beyond "listening" (e.g. the caBundle is patched). */
  ready?: () => boolean;
  /** The CA bundle sidecars must trust for PolicyDiscovery (undefined: plaintext discovery). */
  operatorCa?: () => string | undefined;
  /**
   * Admission requests handled at once; more are answered 429 at once (the API server retries per
   * its failurePolicy) instead of queueing bodies of up to MAX_BODY each in memory. Default 64.
   */
  maxConcurrent?: number;
  /**
   * The CPU rules of a namespace (its ResourceQuotas and LimitRanges), so the sidecar gets a CPU
   * limit where one is required. A failure or a slow answer means "none known": the pod is then
   * injected without a limit, and the API server's quota check has the last word.
   */
  namespaceCpu?: (namespace: string) => Promise<NamespaceCpuRules>;
  /** Largest request body accepted, in bytes (default 6 MiB: twice what an API server sends). */
  maxBodyBytes?: number;
}

class BodyTooLarge extends Error {}

export interface WebhookServer {
  readonly port: number;
  readonly server: https.Server;
  setCertificate(cert: { certPem: string; keyPem: string }): void;
  close(): Promise<void>;
}

export async function startWebhookServer(o: WebhookServerOptions): Promise<WebhookServer> {
  const logger = o.logger ?? silentLogger;
  const decisions = new Counter({
    name: 'sluice_injection_requests_total',
    help: 'Pod admission requests answered by the injector, by result (injected, skipped, denied, ignored, error).',
    labelNames: ['result', 'reason'] as const,
    registers: o.registry ? [o.registry] : [],
  });

  const maxConcurrent = o.maxConcurrent ?? 64;
  const maxBodyBytes = o.maxBodyBytes ?? MAX_BODY;
  let inFlight = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') return send(res, 200, { status: 'ok' });
    if (req.method === 'GET' && path === '/readyz') {
      const ready = o.ready?.() ?? true;
      return send(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready' });
    }
    if (path !== MUTATE_PATH && path !== MUTATE_ANNOTATED_PATH) return send(res, 404, { error: 'not found' });
    if (req.method !== 'POST') return send(res, 405, { error: 'method not allowed' });
    if (inFlight >= maxConcurrent) {
      decisions.inc({ result: 'error', reason: 'TooManyRequests' });
      res.setHeader('retry-after', '1');
      res.setHeader('connection', 'close');
      return send(res, 429, { error: `more than ${maxConcurrent} admission requests at once` });
    }
    inFlight++;
    try {
      return await admit(req, res, path);
    } finally {
      inFlight--;
    }
  };

  const admit = async (req: IncomingMessage, res: ServerResponse, path: string | undefined) => {
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req, maxBodyBytes));
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        decisions.inc({ result: 'error', reason: 'TooLarge' });
        res.setHeader('connection', 'close');
        return send(res, 413, { error: err.message });
      }
      decisions.inc({ result: 'error', reason: 'BadRequest' });
      return send(res, 400, { error: (err as Error).message });
    }
    let review;
    try {
      review = parseAdmissionReview(body);
    } catch (err) {
      decisions.inc({ result: 'error', reason: 'BadRequest' });
      if (err instanceof AdmissionReviewError) return send(res, 400, { error: err.message });
      throw err;
    }
    if (!isPodCreate(review)) {
      decisions.inc({ result: 'ignored', reason: 'NotPodCreate' });
      return send(res, 200, admissionResponse(review.uid, { action: 'allow' }));
    }
    const input = gatherInput(review, { namespaceOptedIn: path === MUTATE_PATH, config: o.config });
    const operatorCaPem = o.operatorCa?.();
    const ns = input.pod.metadata?.namespace;
    const namespaceCpu = ns && o.namespaceCpu ? await o.namespaceCpu(ns).catch((err: unknown) => {
      logger.warn('namespace CPU rules unknown; injecting without a CPU limit', { namespace: ns, err: (err as Error).message });
      return undefined;
    }) : undefined;
    const decision = planInjection({ ...input, ...(operatorCaPem ? { operatorCaPem } : {}), ...(namespaceCpu ? { namespaceCpu } : {}) });
    const pod = `${input.pod.metadata?.namespace ?? ''}/${input.pod.metadata?.name || `${input.pod.metadata?.generateName ?? ''}*`}`;
    switch (decision.action) {
      case 'patch':
        decisions.inc({ result: 'injected', reason: '' });
        logger.info('injecting sidecar', { pod, ops: decision.patch.length });
        break;
      case 'deny':
        decisions.inc({ result: 'denied', reason: decision.code });
        logger.warn('refused pod', { pod, code: decision.code, reason: decision.message });
        break;
      case 'skip':
        decisions.inc({ result: 'skipped', reason: decision.reason });
        logger.debug('not injecting', { pod, reason: decision.reason });
        break;
    }
    return send(res, 200, admissionResponse(review.uid, decision));
  };

  const server = https.createServer({ cert: o.cert.certPem, key: o.cert.keyPem, minVersion: 'TLSv1.2' }, (req, res) => {
    handle(req, res).catch((err) => {
      decisions.inc({ result: 'error', reason: 'Internal' });
      logger.error('webhook request failed', { err });
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    server,
    setCertificate(cert) {
      server.setSecureContext({ cert: cert.certPem, key: cert.keyPem, minVersion: 'TLSv1.2' });
      logger.info('webhook serving certificate reloaded');
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** Past `limit` the rest of the body is read and dropped (bounded by the request timeout), so the 413 can be sent. */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        if (chunks.length > 0 || size - c.length <= limit) reject(new BodyTooLarge(`request body over ${limit} bytes`));
        chunks.length = 0;
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
