/**
 * Injected pods in namespaces with a ResourceQuota on limits.cpu or a LimitRange on CPU: the real
 * API server's quota and LimitRanger admission have the last word. The injector, acting as the
 * chart's ServiceAccount (so the chart's RBAC covers its reads), gives the sidecar a CPU limit
 * only where the namespace requires one, within the LimitRange's bounds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { KubeConfig } from '@kubernetes/client-node';
import { eventually } from '../../../test/helpers/eventually.ts';
import { freePort } from '../../../lib/net.ts';
import { KubeClient, resourcePath, type KubeObject } from '../../src/kube-client.ts';
import { startInjection, type Injection } from '../../src/injection/start-injection.ts';
import { CHART, helmOffline } from '../../../test/chart/render-chart.ts';
import { OPERATOR_RELEASE } from '../../../test/cluster/cluster-info.ts';
import { TestCluster } from '../helpers/cluster.ts';

const NS = OPERATOR_RELEASE.namespace;
const MWC = { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'mutatingwebhookconfigurations' };
const PODS = { group: '', version: 'v1', plural: 'pods' };

let cluster: TestCluster;
let injection: Injection;
let operatorClient: KubeClient;

beforeAll(async () => {
  cluster = await TestCluster.start(['quota', 'ranged', 'free']);
  for (const ns of ['quota', 'ranged', 'free']) await cluster.client.patch(`/api/v1/namespaces/${ns}`, { metadata: { labels: { 'sluice.dev/injection': 'enabled' } } });
  await cluster.apply(`
apiVersion: v1
kind: ResourceQuota
metadata: {name: compute, namespace: quota}
spec: {hard: {requests.cpu: "4", limits.cpu: "4", pods: "10"}}
---
apiVersion: v1
kind: LimitRange
metadata: {name: cpu, namespace: ranged}
spec:
  limits:
    - type: Container
      max: {cpu: 500m}
      min: {cpu: 100m}
      default: {cpu: 200m}
      defaultRequest: {cpu: 100m}
`);
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const res = await helmOffline(['template', OPERATOR_RELEASE.name, CHART, '--namespace', NS, '--set', `webhook.url=${url}`, '--show-only', 'templates/mutatingwebhookconfiguration.yaml']);
  expect(res.code, res.stderr).toBe(0);
  await cluster.client.create(resourcePath(MWC), parse(res.stdout));
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.operatorKubeconfigPath);
  operatorClient = new KubeClient(kc);
  injection = await startInjection({
    client: operatorClient, namespace: NS, serviceName: 'sluice-webhook', secretName: 'sluice-webhook-tls', webhookConfigName: 'sluice-sidecar-injector',
    listen: `127.0.0.1:${port}`, webhookUrl: url,
    values: { image: 'ghcr.io/sluice-dev/sluice-proxy:0.1.0', operatorAddress: `sluice-discovery.${NS}.svc:15010` },
  });
});

afterAll(async () => {
  await cluster?.client.delete(resourcePath(MWC, undefined, 'sluice-sidecar-injector')).catch(() => {});
  await injection?.stop();
  operatorClient?.close();
  await cluster?.stop();
});

type Resources = { requests?: Record<string, string>; limits?: Record<string, string> };
const sidecarOf = (pod: KubeObject) => (pod.spec.initContainers as { name: string; resources: Resources }[]).find((c) => c.name === 'sluice-proxy');
const createPod = (namespace: string, name: string, app: Resources = {}, annotations: Record<string, string> = {}) =>
  cluster.client.create<KubeObject>(resourcePath(PODS, namespace), {
    metadata: { name, annotations },
    spec: { containers: [{ name: 'app', image: 'example/app:1', resources: app }] },
  });

describe('the injected sidecar in namespaces with CPU quotas and limit ranges', () => {
  it('gets no CPU limit where nothing requires one (no CFS throttling)', async () => {
    const pod = await createPod('free', 'p-1');
    expect(sidecarOf(pod)?.resources).toEqual({ requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } });
  });

  it('is admitted under a ResourceQuota on limits.cpu, with the configured limit, and counted', async () => {
    const pod = await createPod('quota', 'p-1', { requests: { cpu: '100m' }, limits: { cpu: '200m' } });
    expect(sidecarOf(pod)?.resources.limits).toEqual({ cpu: '1', memory: '256Mi' });
    const stored = await cluster.client.get<KubeObject>(resourcePath(PODS, 'quota', 'p-1'));
    expect(sidecarOf(stored)?.resources.limits?.cpu).toBe('1');
    // The quota controller counts the sidecar's limit with the app's: 200m + 1 core.
    await eventually(async () => {
      const q = await cluster.client.get<KubeObject>('/api/v1/namespaces/quota/resourcequotas/compute');
      expect(q.status?.used?.['limits.cpu']).toBe('1200m');
    }, { timeoutMs: 30_000 });
  });

  it('keeps a CPU limit the pod asks for by annotation', async () => {
    const pod = await createPod('quota', 'p-2', { limits: { cpu: '200m' } }, { 'sluice.dev/proxy-cpu-limit': '300m' });
    expect(sidecarOf(pod)?.resources.limits?.cpu).toBe('300m');
  });

  it('stays within a LimitRange: the limit lowered to its max, the request raised to its min', async () => {
    const pod = await createPod('ranged', 'p-1');
    expect(sidecarOf(pod)?.resources.limits?.cpu).toBe('500m');
    expect(sidecarOf(pod)?.resources.requests?.cpu).toBe('100m');
    // The app container got the LimitRange's defaults from the API server: both fit.
    expect((pod.spec.containers as { resources: Resources }[])[0]?.resources).toEqual({ requests: { cpu: '100m' }, limits: { cpu: '200m' } });
  });

  it('keeps an annotation above the LimitRange max as asked: the API server refuses it, naming the max', async () => {
    const err = await createPod('ranged', 'p-2', {}, { 'sluice.dev/proxy-cpu-limit': '2' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ statusCode: 403 });
    expect((err as Error).message).toContain('maximum cpu usage per Container is 500m');
  });
});
