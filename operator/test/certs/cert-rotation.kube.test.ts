/**
 * Certificate rotation without a restart, against the real kube-apiserver: with lifetimes
 * of seconds, the serving certificate and then the CA are rotated while the same HTTPS server keeps
 * listening; the webhook configuration's caBundle follows, and pods created through the API server
 * after each rotation still come back injected (the API server verifies the new chain).
 */
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resourcePath, type KubeClient, type KubeObject } from '../../src/kube-client.ts';
import { CertManager } from '../../src/certs/cert-manager.ts';
import { certPolicy } from '../../src/certs/rotation-plan.ts';
import { certsFromSecretData, splitPem } from '../../src/certs/webhook-certs.ts';
import { startInjection, type Injection } from '../../src/injection/start-injection.ts';
import { eventually } from '../../../test/helpers/eventually.ts';
import { OPERATOR_RELEASE } from '../../../test/cluster/cluster-info.ts';
import { freePort } from '../../../lib/net.ts';
import { TestCluster } from '../helpers/cluster.ts';

const NS = OPERATOR_RELEASE.namespace;
const SVC = 'sluice-webhook';
const SECRET = 'sluice-webhook-tls';
const CONFIG_NAME = 'sluice-sidecar-injector';
const MWC = { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'mutatingwebhookconfigurations' };
const SECRETS = { group: '', version: 'v1', plural: 'secrets' };
const PODS = { group: '', version: 'v1', plural: 'pods' };

let cluster: TestCluster;
let client: KubeClient;
let injection: Injection;

/** The serving certificate the webhook port presents right now, read from a fresh TLS handshake. */
function servedCertificate(port: number): Promise<{ serial: string; issuer: string }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: `${SVC}.${NS}.svc` }, () => {
      const c = s.getPeerCertificate();
      s.end();
      resolve({ serial: c.serialNumber, issuer: String(c.issuer.CN ?? '') });
    });
    s.on('error', reject);
  });
}

async function webhookBundles(): Promise<string[]> {
  const cfg = await client.get<KubeObject>(resourcePath(MWC, undefined, CONFIG_NAME));
  return (cfg.webhooks as { clientConfig: { caBundle?: string } }[]).map((w) => Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString());
}

let podCount = 0;
async function createdPodIsInjected(): Promise<boolean> {
  const pod = await client.create<KubeObject>(resourcePath(PODS, 'shop'), {
    metadata: { name: `p-${++podCount}` },
    spec: { containers: [{ name: 'app', image: 'example/app:1' }] },
  });
  return (pod.spec.initContainers ?? []).some((c: { name: string }) => c.name === 'sluice-proxy');
}

beforeAll(async () => {
  cluster = await TestCluster.start(['shop']);
  client = cluster.client;
  await client.patch('/api/v1/namespaces/shop', { metadata: { labels: { 'sluice.dev/injection': 'enabled' } } });
  // The API server here cannot reach a Service: the configuration names the webhook by URL.
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  await client.create(resourcePath(MWC), {
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: CONFIG_NAME },
    webhooks: [{
      name: 'namespace.inject.sluice.dev', failurePolicy: 'Fail', sideEffects: 'None', admissionReviewVersions: ['v1'], timeoutSeconds: 5,
      clientConfig: { url: `${url}/mutate-pods` },
      rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
      namespaceSelector: { matchLabels: { 'sluice.dev/injection': 'enabled' } },
    }],
  });
  injection = await startInjection({
    client, namespace: NS, serviceName: SVC, secretName: SECRET, webhookConfigName: CONFIG_NAME, listen: `127.0.0.1:${port}`, webhookUrl: url,
    values: { image: 'ghcr.io/sluice-dev/sluice-proxy:0.1.0', operatorAddress: `sluice-discovery.${NS}.svc:15010` },
    // Serving certificates renewed every 2s, the CA every 8s; replicas re-read every 300ms.
    certPolicy: { servingLifetimeMs: 3_000, caLifetimeMs: 12_000, renewFraction: 2 / 3, backdateMs: 0 },
    resyncMs: 300,
  });
});

afterAll(async () => {
  await client?.delete(resourcePath(MWC, undefined, CONFIG_NAME)).catch(() => {});
  await injection?.stop();
  await cluster?.stop();
});

describe('webhook certificate rotation', () => {
  it('rotates the serving certificate, then the CA, in the running server', { timeout: 40_000 }, async () => {
    const port = injection.port;
    const httpsServer = injection.server.server;
    const first = await servedCertificate(port);
    const firstCa = injection.certs.current?.caCertPem as string;
    expect(await createdPodIsInjected()).toBe(true);

    // 1. A new serving certificate from the same CA, on the same listening socket.
    const second = await eventually(async () => {
      const now = await servedCertificate(port);
      expect(now.serial).not.toBe(first.serial);
      return now;
    }, { timeoutMs: 10_000, intervalMs: 200 });
    expect(second.issuer).toBe(first.issuer);
    expect(injection.server.server).toBe(httpsServer);
    expect(httpsServer.listening).toBe(true);
    expect(await createdPodIsInjected()).toBe(true);

    // 2. A new CA: the caBundle carries the new CA (and still the old one, which has not expired).
    const rotatedCa = await eventually(() => {
      const ca = injection.certs.current?.caCertPem as string;
      expect(ca).not.toBe(firstCa);
      return ca;
    }, { timeoutMs: 20_000, intervalMs: 200 });
    const bundles = await eventually(async () => {
      const b = await webhookBundles();
      for (const bundle of b) expect(bundle).toContain(rotatedCa.trim());
      return b;
    }, { timeoutMs: 5_000, intervalMs: 100 });
    expect(splitPem(bundles[0] as string).length).toBeGreaterThanOrEqual(2);
    // The served leaf is signed by the CA now in the Secret, and the API server accepts it.
    await eventually(async () => {
      const secret = await client.get<KubeObject>(resourcePath(SECRETS, NS, SECRET));
      const stored = certsFromSecretData(secret.data as Record<string, string>);
      const served = await servedCertificate(port);
      expect(new X509Certificate(stored.certPem).serialNumber.toUpperCase()).toBe(served.serial.toUpperCase());
      expect(new X509Certificate(stored.certPem).checkIssued(new X509Certificate(stored.caCertPem))).toBe(true);
    }, { timeoutMs: 5_000, intervalMs: 100 });
    expect(await createdPodIsInjected()).toBe(true);
    expect(injection.server.server).toBe(httpsServer);
  });

  it('replicas started together settle on one certificate (optimistic concurrency on the Secret)', async () => {
    const policy = certPolicy({ dnsNames: [`${SVC}.${NS}.svc`], caCommonName: 'replica test CA' });
    const replicas = [0, 1, 2].map(() => new CertManager({ client, namespace: NS, secretName: 'replica-tls', webhookConfigName: CONFIG_NAME, policy }));
    try {
      const certs = await Promise.all(replicas.map((r) => r.start()));
      const secret = await client.get<KubeObject>(resourcePath(SECRETS, NS, 'replica-tls'));
      const stored = certsFromSecretData(secret.data as Record<string, string>);
      for (const c of certs) expect(c.certPem).toBe(stored.certPem);
      // A later replica adopts what is stored and writes nothing.
      const late = new CertManager({ client, namespace: NS, secretName: 'replica-tls', webhookConfigName: CONFIG_NAME, policy });
      replicas.push(late);
      expect((await late.start()).certPem).toBe(stored.certPem);
      const after = await client.get<KubeObject>(resourcePath(SECRETS, NS, 'replica-tls'));
      expect(after.metadata.resourceVersion).toBe(secret.metadata.resourceVersion);
    } finally {
      for (const r of replicas) r.stop();
    }
  });
});
