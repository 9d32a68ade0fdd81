/**
 * Shared pieces of the kube-api-server tests: a server per test file, client-node clients bound to
 * it, and a helper that returns the Status of a refused request.
 */
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { startKubeApiServer, type KubeApiServer, type KubeApiServerOptions } from './server.ts';

export interface Status {
  kind: string;
  code: number;
  reason: string;
  message: string;
  details?: { causes?: { reason: string; field?: string; message: string }[] };
}

export async function startServer(opts: KubeApiServerOptions = {}): Promise<{ server: KubeApiServer; kc: KubeConfig }> {
  const server = await startKubeApiServer({ namespaces: ['shop'], ...opts });
  const kc = new KubeConfig();
  kc.loadFromString(server.kubeconfig);
  return { server, kc };
}

/** Awaits a request that must fail and returns the API Status it failed with. */
export async function refusal(p: Promise<unknown>): Promise<Status> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiException) {
      const body = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
      return body as Status;
    }
    throw err;
  }
  throw new Error('expected the request to be refused, but it succeeded');
}

/**
 * A raw JSON request with the admin token — for bodies client-node's typed serializers would
 * rewrite (they drop schema keys such as `default` or `x-kubernetes-validations`).
 */
export async function rawRequest(server: KubeApiServer, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: any }> {
  const { Agent } = await import('undici');
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.auth.adminToken}`, 'content-type': contentType, accept: 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    dispatcher: new Agent({ connect: { ca: server.caCert } }),
  } as RequestInit);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}
