/**
 * The webhook CA survives what GitOps tools and `kubectl replace --force` do to the webhook
 * configuration: delete it and create it again. The operator (as the chart's ServiceAccount, with
 * OwnerReferencesPermissionEnforcement on in this control plane) owns the certificate Secret by its
 * ServiceAccount, so garbage collection leaves the Secret alone; the recreated configuration gets
 * the same CA back and pods are injected again. A Secret deleted by hand while the operator runs
 * is written back with the CA it serves; an earlier version's Secret, owned by the configuration,
 * loses that owner; and the Secret still goes away with its owner (`helm uninstall`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient, resourcePath, type KubeObject } from '../../src/kube-client.ts';
import { CertManager } from '../../src/certs/cert-manager.ts';
import { certPolicy } from '../../src/certs/rotation-plan.ts';
import { certsFromSecretData } from '../../src/certs/webhook-certs.ts';
import { startInjection, type Injection } from '../../src/injection/start-injection.ts';
import { eventually } from '../../../test/helpers/eventually.ts';
import { CHART, helmOffline } from '../../../test/chart/render-chart.ts';
import { OPERATOR_RELEASE } from '../../../test/cluster/cluster-info.ts';
import { freePort } from '../../../lib/net.ts';
import { TestCluster } from '../helpers/cluster.ts';

const NS = OPERATOR_RELEASE.namespace;
const SECRET = 'sluice-webhook-tls';
const CONFIG_NAME = 'sluice-sidecar-injector';
const MWC = { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'mutatingwebhookconfigurations' };
const SECRETS = { group: '', version: 'v1', plural: 'secrets' };
const PODS = { group: '', version: 'v1', plural: 'pods' };

let cluster: TestCluster;
let operatorClient: KubeClient;
let injection: Injection;
let config: KubeObject;

const caOf = async () => certsFromSecretData((await cluster.client.get<KubeObject>(resourcePath(SECRETS, NS, SECRET))).data as Record<string, string>)?.caCertPem;
const bundles = async () => ((await cluster.client.get<KubeObject>(resourcePath(MWC, undefined, CONFIG_NAME))).webhooks as { clientConfig: { caBundle?: string } }[])
  .map((w) => Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString());
let pods = 0;
const injected = async () => {
  const pod = await cluster.client.create<KubeObject>(resourcePath(PODS, 'shop'), { metadata: { name: `p-${++pods}` }, spec: { containers: [{ name: 'app', image: 'example/app:1' }] } });
  return (pod.spec.initContainers ?? []).map((c: { name: string }) => c.name);
};

beforeAll(async () => {
  cluster = await TestCluster.start(['shop']);
  await cluster.client.patch('/api/v1/namespaces/shop', { metadata: { labels: { 'sluice.dev/injection': 'enabled' } } });
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const res = await helmOffline(['template', OPERATOR_RELEASE.name, CHART, '--namespace', NS, '--set', `webhook.url=${url}`, '--set', 'webhook.failurePolicy=Fail',
    '--show-only', 'templates/mutatingwebhookconfiguration.yaml']);
  expect(res.code, res.stderr).toBe(0);
  config = parse(res.stdout) as KubeObject;
  await cluster.client.create(resourcePath(MWC), config);
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.operatorKubeconfigPath);
  operatorClient = new KubeClient(kc);
  injection = await startInjection({
    client: operatorClient, namespace: NS, serviceName: 'sluice-webhook', secretName: SECRET, webhookConfigName: CONFIG_NAME,
    ownerServiceAccount: OPERATOR_RELEASE.serviceAccount, listen: `127.0.0.1:${port}`, webhookUrl: url,
    values: { image: 'ghcr.io/sluice-dev/sluice-proxy:0.1.0', operatorAddress: `sluice-discovery.${NS}.svc:15010` },
    resyncMs: 300,
  });
});

afterAll(async () => {
  await cluster?.client.delete(resourcePath(MWC, undefined, CONFIG_NAME)).catch(() => {});
  await injection?.stop();
  operatorClient?.close();
  await cluster?.stop();
});

describe('the webhook certificate across a recreated webhook configuration', () => {
  it('owns the Secret by the operator\'s ServiceAccount, allowed under OwnerReferencesPermissionEnforcement', async () => {
    const secret = await cluster.client.get<KubeObject>(resourcePath(SECRETS, NS, SECRET));
    expect(secret.metadata.ownerReferences).toMatchObject([{ apiVersion: 'v1', kind: 'ServiceAccount', name: OPERATOR_RELEASE.serviceAccount }]);
    expect(await injected()).toEqual(['sluice-proxy']);
  });

  it('keeps the same CA when the configuration is deleted and created again (kubectl replace --force, GitOps)', async () => {
    const ca = await caOf();
    const path = resourcePath(MWC, undefined, CONFIG_NAME);
    const old = await cluster.client.get<KubeObject>(path);
    await cluster.client.delete(path);
    await eventually(async () => expect(await cluster.client.get(path).catch((e: { statusCode?: number }) => e.statusCode)).toBe(404), { timeoutMs: 10_000 });
    await cluster.client.create(resourcePath(MWC), config);
    const fresh = await cluster.client.get<KubeObject>(path);
    expect(fresh.metadata.uid).not.toBe(old.metadata.uid);
    // The garbage collector had its chance: an owner it deleted would take the Secret within moments.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await caOf()).toBe(ca);
    await eventually(async () => {
      for (const b of await bundles()) expect(b).toContain((ca as string).trim());
    }, { timeoutMs: 20_000 });
    expect(injection.certs.current?.caCertPem).toBe(ca);
    expect(await eventually(injected, { timeoutMs: 20_000 })).toEqual(['sluice-proxy']);
  });

  it('writes back the CA it serves when the Secret is deleted while it runs', async () => {
    const ca = await caOf();
    await cluster.client.delete(resourcePath(SECRETS, NS, SECRET));
    await eventually(async () => expect(await caOf()).toBe(ca), { timeoutMs: 20_000 });
    expect(injection.certs.current?.caCertPem).toBe(ca);
  });

  it('mints a new CA when its key is removed from the Secret (the way to force one now)', async () => {
    const ca = await caOf();
    await cluster.client.patch(resourcePath(SECRETS, NS, SECRET), [{ op: 'remove', path: '/data/ca.key' }], 'json');
    await eventually(async () => {
      const now = await caOf();
      expect(now).toBeTruthy();
      expect(now).not.toBe(ca);
      expect(injection.certs.current?.caCertPem).toBe(now);
    }, { timeoutMs: 20_000 });
    expect(await eventually(injected, { timeoutMs: 20_000 })).toEqual(['sluice-proxy']);
  });

  it('takes over a Secret an earlier version owned by the configuration', async () => {
    const path = resourcePath(SECRETS, NS, SECRET);
    const cfg = await cluster.client.get<KubeObject>(resourcePath(MWC, undefined, CONFIG_NAME));
    await cluster.client.patch(path, { metadata: { ownerReferences: [{ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', name: CONFIG_NAME, uid: cfg.metadata.uid }] } });
    await eventually(async () => {
      const s = await cluster.client.get<KubeObject>(path);
      expect(s.metadata.ownerReferences).toMatchObject([{ kind: 'ServiceAccount', name: OPERATOR_RELEASE.serviceAccount }]);
      expect(s.metadata.ownerReferences).toHaveLength(1);
    }, { timeoutMs: 20_000 });
  });

  it('goes away with its owner ServiceAccount (what helm uninstall deletes)', async () => {
    // A second, throwaway identity and Secret: the chart's own ServiceAccount serves the whole run.
    await cluster.client.create(resourcePath({ group: '', version: 'v1', plural: 'serviceaccounts' }, 'shop'), { metadata: { name: 'gone' } });
    const manager = new CertManager({
      client: cluster.client, namespace: 'shop', secretName: 'gone-tls', webhookConfigName: 'none', ownerServiceAccount: 'gone',
      policy: certPolicy({ dnsNames: ['gone.shop.svc'], caCommonName: 'gone CA' }),
    });
    await manager.reconcile();
    manager.stop();
    expect((await cluster.client.get<KubeObject>(resourcePath(SECRETS, 'shop', 'gone-tls'))).metadata.ownerReferences).toMatchObject([{ kind: 'ServiceAccount', name: 'gone' }]);
    await cluster.client.delete(resourcePath({ group: '', version: 'v1', plural: 'serviceaccounts' }, 'shop', 'gone'));
    await eventually(async () => {
      expect(await cluster.client.get(resourcePath(SECRETS, 'shop', 'gone-tls')).catch((e: { statusCode?: number }) => e.statusCode)).toBe(404);
    }, { timeoutMs: 60_000 });
  });
});
