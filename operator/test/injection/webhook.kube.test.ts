/**
 * End to end through the real kube-apiserver: pods created there go through the real admission
 * chain (namespaceSelector, objectSelector, HTTPS verified against the caBundle the operator
 * patched, JSON Patch applied, then the API server's own Pod validation) and come back injected —
 * or refused with the injector's message. The webhook configuration is the chart's own, rendered
 * with `webhook.url` (the API server here cannot reach a Service).
 */
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { freePort } from '../../../lib/net.ts';
import { resourcePath, type KubeClient, type KubeObject } from '../../src/kube-client.ts';
import { KubeApiError } from '../../src/errors.ts';
import { startInjection, type Injection } from '../../src/injection/start-injection.ts';
import { CHART, helmOffline } from '../../../test/chart/render-chart.ts';
import { OPERATOR_RELEASE } from '../../../test/cluster/cluster-info.ts';
import { TestCluster } from '../helpers/cluster.ts';

const NS = OPERATOR_RELEASE.namespace;
const SVC = 'sluice-webhook';
const CONFIG_NAME = 'sluice-sidecar-injector';
const PODS = { group: '', version: 'v1', plural: 'pods' };

/** The chart's MutatingWebhookConfiguration, pointed at a URL. */
async function webhookConfiguration(url: string): Promise<KubeObject> {
  const res = await helmOffline(['template', OPERATOR_RELEASE.name, CHART, '--namespace', NS, '--set', `webhook.url=${url}`,
    '--show-only', 'templates/mutatingwebhookconfiguration.yaml']);
  if (res.code !== 0) throw new Error(`helm template: ${res.stderr}`);
  return parse(res.stdout) as KubeObject;
}

let cluster: TestCluster;
let client: KubeClient;
let injection: Injection;
const registry = new Registry();
/** How many admission requests the injector answered with this result. */
async function answered(result: string, reason?: string): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'sluice_injection_requests_total');
  return (m?.values ?? []).filter((v) => v.labels.result === result && (reason === undefined || v.labels.reason === reason)).reduce((a, v) => a + v.value, 0);
}

beforeAll(async () => {
  cluster = await TestCluster.start(['shop', 'plain']);
  client = cluster.client;
  await client.patch('/api/v1/namespaces/shop', { metadata: { labels: { 'sluice.dev/injection': 'enabled' } } });
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const config = await webhookConfiguration(url);
  expect(config.metadata.name).toBe(CONFIG_NAME);
  await client.create(resourcePath({ group: 'admissionregistration.k8s.io', version: 'v1', plural: 'mutatingwebhookconfigurations' }), config);
  injection = await startInjection({
    client, namespace: NS, serviceName: SVC, secretName: 'sluice-webhook-tls', webhookConfigName: CONFIG_NAME, ownerServiceAccount: OPERATOR_RELEASE.serviceAccount, listen: `127.0.0.1:${port}`,
    webhookUrl: url, registry,
    values: { image: 'ghcr.io/sluice-dev/sluice-proxy:0.1.0', operatorAddress: `sluice-discovery.${NS}.svc:15010` },
  });
});

afterAll(async () => {
  await client?.delete(resourcePath({ group: 'admissionregistration.k8s.io', version: 'v1', plural: 'mutatingwebhookconfigurations' }, undefined, CONFIG_NAME)).catch(() => {});
  await client?.delete(resourcePath(PODS, 'kube-system', 'k-1')).catch(() => {});
  await client?.delete(resourcePath(PODS, NS, 's-1')).catch(() => {});
  await injection?.stop();
  await cluster?.stop();
});

const createPod = (namespace: string, name: string, extra: { annotations?: Record<string, string>; labels?: Record<string, string> } = {}) =>
  client.create<KubeObject>(resourcePath(PODS, namespace), {
    metadata: { name, ...extra },
    spec: { containers: [{ name: 'app', image: 'example/app:1', ports: [{ name: 'http', containerPort: 8080 }, { containerPort: 9090 }] }] },
  });
const names = (list: { name: string }[] | undefined) => (list ?? []).map((c) => c.name);

describe('sidecar injection through the API server', () => {
  it('patches the webhook configuration with the CA that signed the serving certificate', async () => {
    const cfg = await client.get<KubeObject>(resourcePath({ group: 'admissionregistration.k8s.io', version: 'v1', plural: 'mutatingwebhookconfigurations' }, undefined, CONFIG_NAME));
    const bundles = (cfg.webhooks as { clientConfig: { caBundle?: string } }[]).map((w) => Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString());
    expect(bundles).toHaveLength(2);
    for (const b of bundles) expect(b).toContain(injection.certs.current?.caCertPem.trim());
    const secret = await client.get<KubeObject>(resourcePath({ group: '', version: 'v1', plural: 'secrets' }, NS, 'sluice-webhook-tls'));
    expect(secret.type).toBe('kubernetes.io/tls');
    // Owned by the operator's ServiceAccount, not the configuration: recreating that must not take the CA.
    expect(secret.metadata.ownerReferences).toMatchObject([{ kind: 'ServiceAccount', name: OPERATOR_RELEASE.serviceAccount }]);
    expect(Object.keys(secret.data as object).sort()).toEqual(['ca-bundle.crt', 'ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
  });

  it('injects a pod created in a labelled namespace, with port-name takeover', async () => {
    const pod = await createPod('shop', 'user-1');
    expect(names(pod.spec.initContainers)).toEqual(['sluice-proxy']);
    expect(pod.spec.initContainers[0].restartPolicy).toBe('Always');
    expect(pod.spec.containers[0].ports.map((p: { name?: string }) => p.name)).toEqual(['app-http', undefined]);
    expect(pod.spec.initContainers[0].ports[0]).toEqual({ name: 'http', containerPort: 15080, protocol: 'TCP' });
    expect(pod.metadata.annotations?.['sluice.dev/injected']).toBe('ghcr.io/sluice-dev/sluice-proxy:0.1.0');
    // Stored that way, not only returned.
    const stored = await client.get<KubeObject>(resourcePath(PODS, 'shop', 'user-1'));
    expect(names(stored.spec.initContainers)).toEqual(['sluice-proxy']);
  });

  it('leaves pods alone that opt out by annotation or label', async () => {
    expect(names((await createPod('shop', 'out-1', { annotations: { 'sluice.dev/inject': 'false' } })).spec.initContainers)).toEqual([]);
    expect(names((await createPod('shop', 'out-2', { labels: { 'sluice.dev/inject': 'false' } })).spec.initContainers)).toEqual([]);
  });

  it('injects pods annotated in a namespace that is not labelled, and only those', async () => {
    expect(names((await createPod('plain', 'a-1', { annotations: { 'sluice.dev/inject': 'true' } })).spec.initContainers)).toEqual(['sluice-proxy']);
    expect(names((await createPod('plain', 'a-2')).spec.initContainers)).toEqual([]);
  });

  it('is not even called for pods without the annotation outside labelled namespaces (matchConditions)', async () => {
    const before = { skipped: await answered('skipped', 'NotOptedIn'), all: await answered('skipped') + await answered('injected') + await answered('denied') };
    expect(names((await createPod('plain', 'm-1')).spec.initContainers)).toEqual([]);
    expect(names((await createPod('plain', 'm-2', { annotations: { 'sluice.dev/inject': 'false' } })).spec.initContainers)).toEqual([]);
    expect(names((await createPod('plain', 'm-3', { annotations: { other: 'x' } })).spec.initContainers)).toEqual([]);
    expect(await answered('skipped', 'NotOptedIn')).toBe(before.skipped);
    expect(await answered('skipped') + await answered('injected') + await answered('denied')).toBe(before.all);
    // A value that is neither "true" nor "false" still reaches it, and is refused with a message.
    await expect(createPod('plain', 'm-4', { annotations: { 'sluice.dev/inject': 'yes' } })).rejects.toThrow(/must be "true" or "false"/);
    expect(await answered('denied', 'SLUICE_ERR_INVALID_ANNOTATION')).toBeGreaterThanOrEqual(1);
  });

  it('never injects into kube-system or its own namespace, even when asked', async () => {
    expect(names((await createPod('kube-system', 'k-1', { annotations: { 'sluice.dev/inject': 'true' } })).spec.initContainers)).toEqual([]);
    expect(names((await createPod(NS, 's-1', { annotations: { 'sluice.dev/inject': 'true' } })).spec.initContainers)).toEqual([]);
  });

  it('refuses a pod with a hostile resource annotation, with a message naming it', async () => {
    let err: unknown;
    try {
      await createPod('shop', 'evil', { annotations: { 'sluice.dev/proxy-memory-limit': '64Mi"\n  privileged: true' } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).statusCode).toBe(400);
    expect((err as Error).message).toContain('admission webhook "namespace.inject.sluice.dev" denied the request: sluice: annotation sluice.dev/proxy-memory-limit');
    expect((err as Error).message).toContain('is not a Kubernetes quantity');
    await expect(client.get(resourcePath(PODS, 'shop', 'evil'))).rejects.toMatchObject({ statusCode: 404 });
  });
});
