/**
 * The Kubernetes API test server (DESIGN §8): real HTTPS that @kubernetes/client-node, kubectl
 * and helm talk to, with the CRDs from crds/ registered at start. Start it with
 * `startKubeApiServer()`; point clients at `kubeconfigPath` (or `kubeconfig`, the same YAML).
 *
 * Test hooks beyond the HTTP API:
 *  - `api` / `store` / `registry`: direct access to the objects (e.g. to assert on stored state);
 *  - `mintServiceAccountToken({namespace, serviceAccount, podName?, podUid?, audiences?})`: a token
 *    this server accepts for requests and TokenReview (as a pod's projected token would be);
 *  - `resolveServices(fn | {"ns/name": url})`: where webhook `clientConfig.service` references go.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { KubeApi, now } from './api.ts';
import type { ServiceResolver } from './admission.ts';
import { Authenticator, type ServiceAccountTokenRequest } from './auth.ts';
import { builtinResources } from './builtins.ts';
import { ApiError, notFound } from './errors.ts';
import { WorkloadControllers, type WorkloadMode } from './controllers.ts';
import { createHandler } from './http-server.ts';
import { ResourceRegistry, type KubeObject, type Obj, type ResourceType } from './resources.ts';
import { Store } from './store.ts';
import { selfSignedCert } from './tls.ts';

export interface KubeApiServerOptions {
  /** Directory whose *.yaml/*.yml/*.json CRDs are registered at start (default: <repo>/crds; null for none). */
  crdDir?: string | null;
  port?: number;
  host?: string;
  /** HTTPS with a self-signed certificate (default) or plain HTTP. */
  tls?: boolean;
  /** Events kept for watch resumption; older resourceVersions get 410 Gone. */
  historySize?: number;
  bookmarkIntervalMs?: number;
  /** Where to write the kubeconfig (default: a fresh temp directory, removed on stop()). */
  kubeconfigPath?: string;
  /** Extra namespaces to create at start (default, kube-system, kube-public always exist). */
  namespaces?: string[];
  /** Request log (one line per request), e.g. console.error. */
  log?: (line: string) => void;
  /**
   * Simulated deployment/replicaset controllers (see controllers.ts): 'ready' (default) makes
   * Deployments report ready replicas through owned ReplicaSets; 'pods' also creates their Pods
   * (through admission) and marks them Running; 'none' leaves workloads untouched.
   */
  workloads?: WorkloadMode;
}

export const REPO_CRD_DIR = resolve(import.meta.dirname, '../../crds');

export class KubeApiServer {
  readonly store: Store;
  readonly registry: ResourceRegistry;
  readonly api: KubeApi;
  readonly auth: Authenticator;
  url = '';
  kubeconfigPath = '';
  kubeconfig = '';
  /** PEM of the server certificate (its own CA), when serving HTTPS. */
  caCert: string | undefined;
  private server: http.Server | undefined;
  private tempDir: string | undefined;
  private readonly sockets = new Set<import('node:net').Socket>();
  private serviceMap: Map<string, string> = new Map();
  private serviceFn: ServiceResolver | undefined;
  private controllers: WorkloadControllers | undefined;

  constructor(opts: KubeApiServerOptions = {}) {
    this.store = new Store(opts.historySize ?? 10_000);
    this.registry = new ResourceRegistry();
    this.api = new KubeApi(this.store, this.registry);
    this.auth = new Authenticator();
    for (const rt of builtinResources()) this.registry.add(rt);
    for (const rt of this.virtualResources()) this.registry.add(rt);
    this.api.resolveService = (svc) => this.serviceFn?.(svc) ?? this.serviceMap.get(`${svc.namespace}/${svc.name}:${svc.port}`) ?? this.serviceMap.get(`${svc.namespace}/${svc.name}`);
  }

  /** The resource type serving `apiVersion`/`kind` (for calling `api` directly). */
  resource(apiVersion: string, kind: string): ResourceType {
    const rt = this.registry.byKind(apiVersion, kind);
    if (!rt) throw new Error(`no resource serves ${apiVersion} ${kind}`);
    return rt;
  }

  /** Creates an object directly (same path as POST: admission, defaulting, validation). */
  async create(obj: Obj): Promise<KubeObject> {
    const o = obj as KubeObject;
    return this.api.create(this.resource(String(o.apiVersion), String(o.kind)), o.metadata?.namespace, o);
  }

  get(apiVersion: string, kind: string, name: string, namespace?: string): KubeObject | undefined {
    try {
      return this.api.get(this.resource(apiVersion, kind), namespace, name);
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return undefined;
      throw err;
    }
  }

  mintServiceAccountToken(req: ServiceAccountTokenRequest): string {
    return this.auth.mint(req).token;
  }

  /**
   * Where webhooks given as `clientConfig.service` are reached: a function, or a map from
   * "namespace/name" (or "namespace/name:port") to a base URL such as https://127.0.0.1:9443.
   */
  resolveServices(resolver: ServiceResolver | Record<string, string>): void {
    if (typeof resolver === 'function') this.serviceFn = resolver;
    else for (const [k, v] of Object.entries(resolver)) this.serviceMap.set(k, v);
  }

  async start(opts: KubeApiServerOptions = {}): Promise<this> {
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease', ...(opts.namespaces ?? [])]) {
      await this.api.create(this.resource('v1', 'Namespace'), undefined, { metadata: { name: ns } });
    }
    const crdDir = opts.crdDir === undefined ? REPO_CRD_DIR : opts.crdDir;
    if (crdDir) await this.loadCrds(crdDir);
    this.controllers = new WorkloadControllers(this.api, opts.workloads ?? 'ready', opts.log);
    this.controllers.start();
    const tls = opts.tls ?? true;
    const handler = createHandler({
      api: this.api,
      auth: this.auth,
      serverAddress: () => new URL(this.url).host,
      bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 10_000,
      tokenRequest: (ns, sa, body) => this.tokenRequest(ns, sa, body),
      ...(opts.log ? { log: opts.log } : {}),
    });
    const host = opts.host ?? '127.0.0.1';
    if (tls) {
      const { cert, key } = selfSignedCert(['localhost', '127.0.0.1', 'kubernetes', 'kubernetes.default.svc'], 'kube-apiserver');
      this.caCert = cert;
      this.server = https.createServer({ cert, key }, handler);
    } else this.server = http.createServer(handler);
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((res, rej) => {
      this.server?.once('error', rej);
      this.server?.listen(opts.port ?? 0, host, () => res());
    });
    const port = (this.server.address() as AddressInfo).port;
    this.url = `${tls ? 'https' : 'http'}://${host}:${port}`;
    this.kubeconfig = this.renderKubeconfig();
    if (opts.kubeconfigPath) this.kubeconfigPath = opts.kubeconfigPath;
    else {
      this.tempDir = mkdtempSync(join(tmpdir(), 'sluice-kube-'));
      this.kubeconfigPath = join(this.tempDir, 'kubeconfig');
    }
    writeFileSync(this.kubeconfigPath, this.kubeconfig, { mode: 0o600 });
    return this;
  }

  async stop(): Promise<void> {
    this.controllers?.stop();
    const server = this.server;
    this.server = undefined;
    if (server) {
      const closed = new Promise<void>((res) => server.close(() => res()));
      for (const s of this.sockets) s.destroy();
      await closed;
    }
    if (this.tempDir) rmSync(this.tempDir, { recursive: true, force: true });
  }

  /** Registers every CRD in a directory; a CRD the server cannot serve (e.g. an unparsable CEL rule) stops the start. */
  async loadCrds(dir: string): Promise<void> {
    if (!existsSync(dir)) throw new Error(`CRD directory ${dir} does not exist`);
    const crdType = this.resource('apiextensions.k8s.io/v1', 'CustomResourceDefinition');
    for (const file of readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f)).sort()) {
      for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
        const obj = doc.toJS() as KubeObject | null;
        if (!obj || obj.kind !== 'CustomResourceDefinition') continue;
        try {
          await this.api.create(crdType, undefined, obj);
        } catch (err) {
          throw new Error(`cannot register ${file}: ${(err as Error).message}`);
        }
      }
    }
  }

  private renderKubeconfig(): string {
    const ca = this.caCert ? `    certificate-authority-data: ${Buffer.from(this.caCert).toString('base64')}\n` : '';
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: sluice-test',
      '  cluster:',
      `    server: ${this.url}`,
      ca.trimEnd(),
      'users:',
      '- name: sluice-test-admin',
      '  user:',
      `    token: ${this.auth.adminToken}`,
      'contexts:',
      '- name: sluice-test',
      '  context:',
      '    cluster: sluice-test',
      '    user: sluice-test-admin',
      '    namespace: default',
      'current-context: sluice-test',
      '',
    ].filter((l) => l !== '').join('\n') + '\n';
  }

  private tokenRequest(namespace: string, serviceAccount: string, body: Obj): KubeObject {
    const sa = this.get('v1', 'ServiceAccount', serviceAccount, namespace);
    if (!sa) throw notFound({ group: '', plural: 'serviceaccounts', kind: 'ServiceAccount' }, serviceAccount);
    const spec = (body.spec ?? {}) as { audiences?: string[]; expirationSeconds?: number; boundObjectRef?: { kind?: string; name?: string; uid?: string } };
    let podName: string | undefined;
    let podUid: string | undefined;
    if (spec.boundObjectRef?.kind === 'Pod' && spec.boundObjectRef.name) {
      const pod = this.get('v1', 'Pod', spec.boundObjectRef.name, namespace);
      if (!pod) throw notFound({ group: '', plural: 'pods', kind: 'Pod' }, spec.boundObjectRef.name);
      podName = pod.metadata.name;
      podUid = pod.metadata.uid;
    }
    const minted = this.auth.mint({
      namespace, serviceAccount,
      ...(podName ? { podName, podUid: podUid ?? '' } : {}),
      ...(spec.audiences ? { audiences: spec.audiences } : {}),
      expirationSeconds: spec.expirationSeconds ?? 3600,
    });
    return {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
      metadata: { name: serviceAccount, namespace, creationTimestamp: now() },
      spec: { audiences: spec.audiences ?? ['https://kubernetes.default.svc'], expirationSeconds: spec.expirationSeconds ?? 3600, boundObjectRef: spec.boundObjectRef ?? null },
      status: { token: minted.token, expirationTimestamp: minted.expirationTimestamp },
    };
  }

  /** Create-only review resources, answered at once and never stored. */
  private virtualResources(): ResourceType[] {
    const review = (group: string, kind: string, plural: string, namespaced: boolean, answer: ResourceType['virtual']): ResourceType => ({
      group, version: 'v1', kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase(), namespaced,
      shortNames: [], categories: [], verbs: ['create'], storageKey: `${group}/${plural}`, status: false,
      generation: false, requireResourceVersionOnUpdate: false, virtual: answer,
    });
    const stamp = (o: KubeObject): Obj => ({ ...o, metadata: { ...o.metadata, creationTimestamp: null } });
    return [
      review('authentication.k8s.io', 'TokenReview', 'tokenreviews', false, (o) => {
        const spec = (o.spec ?? {}) as { token?: string; audiences?: string[] };
        return { ...stamp(o), status: this.auth.review(spec.token ?? '', spec.audiences) } as unknown as KubeObject;
      }),
      review('authentication.k8s.io', 'SelfSubjectReview', 'selfsubjectreviews', false, (o, user) =>
        ({ ...stamp(o), status: { userInfo: user } }) as unknown as KubeObject),
      // Authorization is not modelled: every request of an authenticated user is allowed.
      review('authorization.k8s.io', 'SubjectAccessReview', 'subjectaccessreviews', false, (o) =>
        ({ ...stamp(o), status: { allowed: true, reason: 'the test API server allows everything' } }) as unknown as KubeObject),
      review('authorization.k8s.io', 'SelfSubjectAccessReview', 'selfsubjectaccessreviews', false, (o) =>
        ({ ...stamp(o), status: { allowed: true, reason: 'the test API server allows everything' } }) as unknown as KubeObject),
      review('authorization.k8s.io', 'LocalSubjectAccessReview', 'localsubjectaccessreviews', true, (o) =>
        ({ ...stamp(o), status: { allowed: true } }) as unknown as KubeObject),
    ];
  }
}

export async function startKubeApiServer(opts: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  return new KubeApiServer(opts).start(opts);
}

