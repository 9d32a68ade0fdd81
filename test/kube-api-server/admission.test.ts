import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { AdmissionregistrationV1Api, AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1MutatingWebhook } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.ts';
import type { KubeApiServer } from './server.ts';
import { refusal, startServer } from './test-support.ts';
import { selfSignedCert } from './tls.ts';

/** A tiny HTTPS admission webhook that records reviews and answers with `respond`. */
interface Hook {
  server: Server;
  url: string;
  ca: string;
  reviews: any[];
  respond: (review: any) => unknown | Promise<unknown>;
}

async function startHook(hosts: string[]): Promise<Hook> {
  const { cert, key } = selfSignedCert(hosts);
  const hook = { reviews: [] as any[], ca: Buffer.from(cert).toString('base64'), respond: (_r: any): unknown => ({}) } as Hook;
  hook.server = createServer({ cert, key }, (req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', async () => {
      const review = JSON.parse(body);
      hook.reviews.push({ path: req.url, ...review });
      const answer = await hook.respond(review);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true, ...(answer as object) } }));
    });
  });
  await new Promise<void>((r) => hook.server.listen(0, '127.0.0.1', () => r()));
  hook.url = `https://127.0.0.1:${(hook.server.address() as AddressInfo).port}`;
  return hook;
}

const jsonPatch = (ops: unknown[]) => ({ patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(ops)).toString('base64') });
const INJECT = [
  { op: 'add', path: '/metadata/labels/sluice.dev~1injected', value: 'true' },
  { op: 'add', path: '/spec/initContainers', value: [{ name: 'sluice-proxy', image: 'sluice:dev', restartPolicy: 'Always' }] },
];

let server: KubeApiServer;
let kc: KubeConfig;
let core: CoreV1Api;
let admission: AdmissionregistrationV1Api;
let hook: Hook;
let serviceHook: Hook;

beforeAll(async () => {
  ({ server, kc } = await startServer({ crdDir: null, workloads: 'pods' }));
  core = kc.makeApiClient(CoreV1Api);
  admission = kc.makeApiClient(AdmissionregistrationV1Api);
  await core.createNamespace({ body: { metadata: { name: 'injected', labels: { 'sluice.dev/injection': 'enabled' } } } });
  await core.createNamespace({ body: { metadata: { name: 'plain' } } });
  hook = await startHook(['localhost', '127.0.0.1']);
  serviceHook = await startHook(['sluice-webhook.sluice-system.svc']);
  server.resolveServices({ 'sluice-system/sluice-webhook': serviceHook.url });
});
afterAll(async () => {
  hook.server.close();
  serviceHook.server.close();
  await server.stop();
});
afterEach(async () => {
  await admission.deleteCollectionMutatingWebhookConfiguration({});
  await admission.deleteCollectionValidatingWebhookConfiguration({});
  hook.reviews.length = 0;
  serviceHook.reviews.length = 0;
});

function webhook(overrides: Partial<V1MutatingWebhook>): V1MutatingWebhook {
  return {
    name: 'inject.sluice.dev',
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    clientConfig: { url: `${hook.url}/inject`, caBundle: hook.ca },
    rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: '*' }],
    namespaceSelector: { matchLabels: { 'sluice.dev/injection': 'enabled' } },
    failurePolicy: 'Fail',
    timeoutSeconds: 5,
    ...overrides,
  };
}

async function register(...webhooks: V1MutatingWebhook[]): Promise<void> {
  await admission.createMutatingWebhookConfiguration({ body: { metadata: { name: 'sluice' }, webhooks } });
}

const pod = (name: string, labels: Record<string, string> = {}) => ({ metadata: { name, labels }, spec: { containers: [{ name: 'app', image: 'app:1' }] } });

describe('mutating admission webhook on pod create', () => {
  it('sends an AdmissionReview over verified TLS and applies the returned JSONPatch', async () => {
    hook.respond = () => jsonPatch(INJECT);
    await register(webhook({}));
    const created = await core.createNamespacedPod({ namespace: 'injected', body: pod('web-0', { app: 'web' }) });
    expect(created.metadata?.labels).toEqual({ app: 'web', 'sluice.dev/injected': 'true' });
    expect(created.spec?.initContainers?.map((c) => c.name)).toEqual(['sluice-proxy']);
    expect(hook.reviews).toHaveLength(1);
    const { request, path } = hook.reviews[0];
    expect(path).toBe('/inject');
    expect(request.operation).toBe('CREATE');
    expect(request.kind).toEqual({ group: '', version: 'v1', kind: 'Pod' });
    expect(request.resource).toEqual({ group: '', version: 'v1', resource: 'pods' });
    expect(request.namespace).toBe('injected');
    expect(request.object.metadata.name).toBe('web-0');
    expect(request.userInfo.username).toBe('kubernetes-admin');
    // The stored pod is the mutated one.
    expect((await core.readNamespacedPod({ name: 'web-0', namespace: 'injected' })).spec?.initContainers).toHaveLength(1);
  });

  it('skips pods outside the namespaceSelector or objectSelector, and other operations', async () => {
    hook.respond = () => jsonPatch(INJECT);
    await register(webhook({ objectSelector: { matchExpressions: [{ key: 'sluice.dev/inject', operator: 'NotIn', values: ['false'] }] } }));
    const other = await core.createNamespacedPod({ namespace: 'plain', body: pod('plain-0') });
    const optedOut = await core.createNamespacedPod({ namespace: 'injected', body: pod('out-0', { 'sluice.dev/inject': 'false' }) });
    // The rule is for CREATE only: an update of a matching pod is not sent.
    await core.patchNamespacedPod({ name: 'out-0', namespace: 'injected', body: { metadata: { labels: { 'sluice.dev/inject': 'true' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    expect(other.spec?.initContainers).toBeUndefined();
    expect(optedOut.spec?.initContainers).toBeUndefined();
    expect(hook.reviews).toHaveLength(0);
  });

  it('reaches service-referenced webhooks through the resolver, checking the certificate against <svc>.<ns>.svc', async () => {
    serviceHook.respond = () => jsonPatch([{ op: 'add', path: '/metadata/annotations', value: { 'sluice.dev/via': 'service' } }]);
    await register(webhook({ clientConfig: { service: { namespace: 'sluice-system', name: 'sluice-webhook', path: '/mutate', port: 443 }, caBundle: serviceHook.ca } }));
    const created = await core.createNamespacedPod({ namespace: 'injected', body: pod('svc-0') });
    expect(created.metadata?.annotations).toEqual({ 'sluice.dev/via': 'service' });
    expect(serviceHook.reviews[0]?.path).toBe('/mutate');
  });

  it('refuses the pod when the webhook cannot be trusted and failurePolicy is Fail; admits it with Ignore', async () => {
    hook.respond = () => jsonPatch(INJECT);
    await register(webhook({ clientConfig: { url: `${hook.url}/inject`, caBundle: serviceHook.ca } }));
    const status = await refusal(core.createNamespacedPod({ namespace: 'injected', body: pod('untrusted-0') }));
    expect(status.code).toBe(500);
    expect(status.message).toContain('failed calling webhook "inject.sluice.dev"');
    expect(hook.reviews).toHaveLength(0);
    await admission.deleteMutatingWebhookConfiguration({ name: 'sluice' });
    await register(webhook({ clientConfig: { url: `${hook.url}/inject`, caBundle: serviceHook.ca }, failurePolicy: 'Ignore' }));
    const admitted = await core.createNamespacedPod({ namespace: 'injected', body: pod('untrusted-1') });
    expect(admitted.spec?.initContainers).toBeUndefined();
  });

  it('honours timeoutSeconds', async () => {
    // The hook would answer after 6 s; the API server gives up after timeoutSeconds (1 s).
    hook.respond = () => new Promise((r) => setTimeout(() => r({}), 6000).unref());
    await register(webhook({ timeoutSeconds: 1 }));
    const started = Date.now();
    const status = await refusal(core.createNamespacedPod({ namespace: 'injected', body: pod('slow-0') }));
    expect(Date.now() - started).toBeLessThan(4500);
    expect(status.code).toBe(500);
    expect(status.message).toContain('timeout');
  });

  it('runs on pods a Deployment creates, through the simulated ReplicaSet controller', async () => {
    hook.respond = () => jsonPatch(INJECT);
    await register(webhook({}));
    const apps = kc.makeApiClient(AppsV1Api);
    await apps.createNamespacedDeployment({
      namespace: 'injected',
      body: { metadata: { name: 'worker' }, spec: { replicas: 2, selector: { matchLabels: { app: 'worker' } }, template: { metadata: { labels: { app: 'worker' } }, spec: { containers: [{ name: 'app', image: 'worker:1' }] } } } },
    });
    const pods = await eventually(async () => {
      const list = await core.listNamespacedPod({ namespace: 'injected', labelSelector: 'app=worker' });
      expect(list.items).toHaveLength(2);
      return list.items;
    });
    for (const p of pods) {
      expect(p.metadata?.name).toMatch(/^worker-[a-z0-9]+-[a-z0-9]{5}$/);
      expect(p.metadata?.labels?.['sluice.dev/injected']).toBe('true');
      expect(p.spec?.initContainers?.[0]?.name).toBe('sluice-proxy');
      expect(p.status?.phase).toBe('Running');
    }
    // generateName pods reach the webhook without a name, as in a real cluster.
    expect(hook.reviews.map((r) => r.request.name)).toEqual(['', '']);
    await eventually(async () => expect((await apps.readNamespacedDeployment({ name: 'worker', namespace: 'injected' })).status?.readyReplicas).toBe(2));
  });

  it('calls validating webhooks after mutation and validation, refusing on denial', async () => {
    hook.respond = (review) => (review.request.object.metadata.labels?.team ? {} : { allowed: false, status: { message: 'pods need a team label' } });
    await admission.createValidatingWebhookConfiguration({
      body: { metadata: { name: 'policy' }, webhooks: [{ ...webhook({}), name: 'validate.sluice.dev', clientConfig: { url: `${hook.url}/validate`, caBundle: hook.ca } } as never] },
    });
    const status = await refusal(core.createNamespacedPod({ namespace: 'injected', body: pod('anon-0') }));
    expect([status.code, status.message]).toEqual([400, 'admission webhook "validate.sluice.dev" denied the request: pods need a team label']);
    await core.createNamespacedPod({ namespace: 'injected', body: pod('team-0', { team: 'a' }) });
    expect(hook.reviews.map((r) => r.path)).toEqual(['/validate', '/validate']);
  });

  it('reports a denial with the webhook message', async () => {
    hook.respond = () => ({ allowed: false, status: { code: 403, message: 'pods need a team label' } });
    await register(webhook({}));
    const status = await refusal(core.createNamespacedPod({ namespace: 'injected', body: pod('denied-0') }));
    expect(status.code).toBe(403);
    expect(status.message).toBe('admission webhook "inject.sluice.dev" denied the request: pods need a team label');
  });
});
