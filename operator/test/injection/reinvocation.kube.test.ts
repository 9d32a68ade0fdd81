/**
 * reinvocationPolicy: IfNeeded on the real API server. A second mutating webhook (a stand-in for
 * another injector, its configuration named so that it runs after Sluice's) adds a container with
 * a port named `http` to every pod. The API server then calls Sluice's webhook again, which takes
 * that port over as it would have at injection: the Service's `targetPort: http` reaches the sidecar.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { freePort } from '../../../lib/net.ts';
import { resourcePath, type KubeObject } from '../../src/kube-client.ts';
import { issueWebhookCerts } from '../../src/certs/issue-certs.ts';
import { certPolicy } from '../../src/certs/rotation-plan.ts';
import { startInjection, type Injection } from '../../src/injection/start-injection.ts';
import { CHART, helmOffline } from '../../../test/chart/render-chart.ts';
import { OPERATOR_RELEASE } from '../../../test/cluster/cluster-info.ts';
import { TestCluster } from '../helpers/cluster.ts';

const NS = OPERATOR_RELEASE.namespace;
const MWC = { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'mutatingwebhookconfigurations' };
const PODS = { group: '', version: 'v1', plural: 'pods' };
const LATE = 'zz-late-injector';

let cluster: TestCluster;
let injection: Injection;
let late: https.Server;
let lateCalls = 0;

beforeAll(async () => {
  cluster = await TestCluster.start(['shop']);
  await cluster.client.patch('/api/v1/namespaces/shop', { metadata: { labels: { 'sluice.dev/injection': 'enabled' } } });
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const res = await helmOffline(['template', OPERATOR_RELEASE.name, CHART, '--namespace', NS, '--set', `webhook.url=${url}`, '--show-only', 'templates/mutatingwebhookconfiguration.yaml']);
  expect(res.code, res.stderr).toBe(0);
  const ours = parse(res.stdout) as KubeObject;
  expect((ours.webhooks as { reinvocationPolicy: string }[]).map((w) => w.reinvocationPolicy)).toEqual(['IfNeeded', 'IfNeeded']);
  await cluster.client.create(resourcePath(MWC), ours);
  injection = await startInjection({
    client: cluster.client, namespace: NS, serviceName: 'sluice-webhook', secretName: 'sluice-webhook-tls', webhookConfigName: 'sluice-sidecar-injector',
    listen: `127.0.0.1:${port}`, webhookUrl: url,
    values: { image: 'ghcr.io/sluice-dev/sluice-proxy:0.1.0', operatorAddress: `sluice-discovery.${NS}.svc:15010` },
  });

  // The other injector: adds a container named "late" with a port named http, once per pod.
  const certs = issueWebhookCerts(undefined, true, certPolicy({ dnsNames: ['127.0.0.1'], caCommonName: 'late injector CA' }), new Date());
  late = https.createServer({ cert: certs.certPem, key: certs.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      lateCalls++;
      const review = JSON.parse(Buffer.concat(chunks).toString()) as { request: { uid: string; object: KubeObject } };
      const has = (review.request.object.spec.containers as { name: string }[]).some((c) => c.name === 'late');
      const patch = has ? [] : [{ op: 'add', path: '/spec/containers/-', value: { name: 'late', image: 'example/late:1', ports: [{ name: 'http', containerPort: 9000 }] } }];
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: {
        uid: review.request.uid, allowed: true, ...(patch.length ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') } : {}),
      } }));
    });
  });
  await new Promise<void>((r) => late.listen(0, '127.0.0.1', () => r()));
  await cluster.client.create(resourcePath(MWC), {
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: LATE },
    webhooks: [{
      name: 'late.example.dev', sideEffects: 'None', admissionReviewVersions: ['v1'], failurePolicy: 'Fail', timeoutSeconds: 5, reinvocationPolicy: 'Never',
      clientConfig: { url: `https://127.0.0.1:${(late.address() as AddressInfo).port}/`, caBundle: Buffer.from(certs.caBundlePem).toString('base64') },
      rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
      namespaceSelector: { matchLabels: { 'sluice.dev/injection': 'enabled' } },
    }],
  });
});

afterAll(async () => {
  for (const name of [LATE, 'sluice-sidecar-injector']) await cluster?.client.delete(resourcePath(MWC, undefined, name)).catch(() => {});
  await injection?.stop();
  await new Promise<void>((r) => (late ? late.close(() => r()) : r()));
  await cluster?.stop();
});

describe('a later injector\'s port, through reinvocation', () => {
  it('is taken over by the sidecar: renamed app-http, the sidecar named http and pointed at it', async () => {
    const pod = await cluster.client.create<KubeObject>(resourcePath(PODS, 'shop'), {
      metadata: { name: 'web-1' }, spec: { containers: [{ name: 'app', image: 'example/app:1', ports: [{ containerPort: 8080 }] }] },
    });
    expect(lateCalls).toBeGreaterThanOrEqual(1);
    const containers = pod.spec.containers as { name: string; ports: { name?: string; containerPort: number }[] }[];
    expect(containers.map((c) => c.name)).toEqual(['app', 'late']);
    expect(containers[1]?.ports[0]).toMatchObject({ name: 'app-http', containerPort: 9000 });
    const sidecar = (pod.spec.initContainers as { name: string; ports: { name: string; containerPort: number }[]; env: { name: string; value?: string }[] }[])[0];
    expect(sidecar?.name).toBe('sluice-proxy');
    expect(sidecar?.ports[0]).toMatchObject({ name: 'http', containerPort: 15080 });
    expect(sidecar?.env).toContainEqual({ name: 'SLUICE_APP_HTTP', value: '127.0.0.1:9000' });
  });
});
