/**
 * A small REST client for the Kubernetes API: JSON in and out, any path, authenticated from a
 * @kubernetes/client-node KubeConfig (kubeconfig file or in-cluster service account, exactly as
 * kubectl would connect). The operator handles four CRDs plus pods, leases, events and
 * TokenReviews the same way, so one path-based client is simpler than four generated ones.
 * Watches use client-node's Watch (see informer.ts).
 */
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeApiError } from './errors.ts';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    [k: string]: unknown;
  };
  spec?: any;
  status?: any;
  [k: string]: unknown;
}

export interface KubeList<T> {
  metadata: { resourceVersion: string };
  items: T[];
}

export type PatchType = 'merge' | 'json' | 'strategic';
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};

export class KubeClient {
  readonly kubeConfig: KubeConfig;
  private readonly agents = new Map<string, http.Agent>();

  constructor(kubeConfig: KubeConfig) {
    this.kubeConfig = kubeConfig;
  }

  get<T = KubeObject>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  list<T = KubeObject>(path: string, query: Record<string, string | undefined> = {}): Promise<KubeList<T>> {
    return this.request<KubeList<T>>('GET', path, { query });
  }

  create<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }

  /** PUT with the object's resourceVersion: a stale write fails with 409 (optimistic concurrency). */
  replace<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body });
  }

  patch<T = KubeObject>(path: string, body: unknown, type: PatchType = 'merge'): Promise<T> {
    return this.request<T>('PATCH', path, { body, contentType: PATCH_CONTENT_TYPE[type] });
  }

  delete(path: string): Promise<unknown> {
    return this.request('DELETE', path);
  }

  async request<T>(
    method: string,
    path: string,
    { body, contentType = 'application/json', query = {} }: { body?: unknown; contentType?: string; query?: Record<string, string | undefined> } = {},
  ): Promise<T> {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new KubeApiError(method, path, 0, 'NoCluster', 'the kubeconfig has no current cluster');
    const url = new URL(cluster.server.replace(/\/$/, '') + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
    // Re-applied per request: in-cluster tokens are rotated on disk and client-node re-reads them.
    const opts: https.RequestOptions = { method, headers: { accept: 'application/json' } };
    await this.kubeConfig.applyToHTTPSOptions(opts);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    if (payload) Object.assign(opts.headers as object, { 'content-type': contentType, 'content-length': payload.length });
    const mod = url.protocol === 'https:' ? https : http;
    opts.agent = this.agent(url.protocol, opts);
    return new Promise<T>((resolve, reject) => {
      const req = mod.request(url, opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: any;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(parsed as T);
          reject(new KubeApiError(method, path, status, parsed?.reason ?? res.statusMessage ?? 'Unknown', parsed?.message ?? text.slice(0, 500)));
        });
      });
      req.setTimeout(30_000, () => req.destroy(new KubeApiError(method, path, 0, 'Timeout', 'no answer within 30s')));
      req.on('error', (err) => reject(err instanceof KubeApiError ? err : new KubeApiError(method, path, 0, 'ConnectionError', err.message)));
      req.end(payload);
    });
  }

  /** Keep-alive agents, one per TLS identity: a reconcile burst reuses connections. */
  private agent(protocol: string, opts: https.RequestOptions): http.Agent {
    const key = protocol;
    let agent = this.agents.get(key);
    if (!agent) {
      agent = protocol === 'https:'
        ? new https.Agent({ keepAlive: true, maxSockets: 32, ca: opts.ca, cert: opts.cert, key: opts.key, rejectUnauthorized: opts.rejectUnauthorized, servername: opts.servername })
        : new http.Agent({ keepAlive: true, maxSockets: 32 });
      this.agents.set(key, agent);
    }
    return agent;
  }

  close(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }
}

/** REST path of a resource collection or object: core ('' group) under /api, others under /apis. */
export function resourcePath(r: { group: string; version: string; plural: string }, namespace?: string, name?: string, subresource?: string): string {
  let p = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  if (namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${r.plural}`;
  if (name) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}

export const objectKey = (o: { metadata: { name: string; namespace?: string } }): string =>
  o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;

export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: undefined, name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}
