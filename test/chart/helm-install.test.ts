/**
 * `helm install` / `upgrade` / `uninstall` of charts/sluice against the Kubernetes API test
 * server, with the operator's injection started the way the chart's Deployment starts it: from the
 * env vars of the rendered container and the injection.json of the installed ConfigMap. So the
 * chart ↔ operator contract is exercised, and a pod created after `helm install` comes back
 * injected through the chart's own MutatingWebhookConfiguration.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient, resourcePath, type KubeObject } from '../../operator/src/kube-client.ts';
import { injectionOptionsFromEnv, startInjection, type Injection } from '../../operator/src/injection/start-injection.ts';
import { eventually } from '../helpers/eventually.ts';
import { helmBinary, runHelm } from '../helpers/helm.ts';
import { kubectl } from '../helpers/kubectl.ts';
import { startKubeApiServer, type KubeApiServer } from '../kube-api-server/index.ts';
import { CHART } from './render-chart.ts';

const NS = 'sluice-system';
const MWC = { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'mutatingwebhookconfigurations' };
const SECRETS = { group: '', version: 'v1', plural: 'secrets' };

let server: KubeApiServer;
let client: KubeClient;
let work: string;
let injection: Injection | undefined;
const helm = (...args: string[]) => runHelm(args, { kubeconfig: server.kubeconfigPath, workDir: work });
const k = (...args: string[]) => kubectl(server.kubeconfigPath, args);

beforeAll(async () => {
  // No CRDs at start: the chart's crds/ installs them, as on a fresh cluster.
  [server] = await Promise.all([startKubeApiServer({ crdDir: null, namespaces: [NS] }), helmBinary()]);
  const kc = new KubeConfig();
  kc.loadFromString(server.kubeconfig);
  client = new KubeClient(kc);
  work = mkdtempSync(join(tmpdir(), 'sluice-helm-'));
});

afterAll(async () => {
  await injection?.stop();
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** Starts injection from what the chart installed: the Deployment's env and the ConfigMap's JSON. */
async function startOperatorInjection(): Promise<Injection> {
  const deploy = await client.get<KubeObject>(resourcePath({ group: 'apps', version: 'v1', plural: 'deployments' }, NS, 'sluice-operator'));
  const container = deploy.spec.template.spec.containers[0];
  const env: Record<string, string> = { POD_NAMESPACE: NS };
  for (const e of container.env as { name: string; value?: string }[]) if (e.value !== undefined) env[e.name] = e.value;
  const cm = await client.get<KubeObject>(resourcePath({ group: '', version: 'v1', plural: 'configmaps' }, NS, 'sluice-injection'));
  const file = join(work, 'injection.json');
  writeFileSync(file, (cm.data as Record<string, string>)['injection.json'] as string);
  env.SLUICE_OPERATOR_INJECTION_CONFIG = file;
  const opts = injectionOptionsFromEnv(env, client);
  if (!opts) throw new Error('the chart did not turn injection on');
  // Port 0 rather than :9443, and a quick resync so the test sees re-patching promptly.
  const started = await startInjection({ ...opts, listen: '127.0.0.1:0', resyncMs: 500 });
  server.resolveServices({ [`${opts.namespace}/${opts.serviceName}`]: `https://127.0.0.1:${started.port}` });
  return started;
}

async function caBundles(): Promise<string[]> {
  const cfg = await client.get<KubeObject>(resourcePath(MWC, undefined, 'sluice-sidecar-injector'));
  return (cfg.webhooks as { clientConfig: { caBundle?: string } }[]).map((w) => w.clientConfig.caBundle ?? '');
}

describe('helm install / upgrade / uninstall of charts/sluice', () => {
  it('installs: CRDs, operator, RBAC, Services, webhook, PDB, NetworkPolicy, dashboard', async () => {
    const install = await helm('install', 'sluice', CHART, '--namespace', NS);
    expect(install.code, install.stderr).toBe(0);
    expect(install.stdout).toContain('STATUS: deployed');
    expect(install.stdout).toContain('kubectl label namespace <ns> sluice.dev/injection=enabled');
    const crds = await k('get', 'crd', '-o', 'name');
    expect(crds.stdout.trim().split('\n').sort()).toEqual([
      'customresourcedefinition.apiextensions.k8s.io/circuitbreakerpolicies.sluice.dev',
      'customresourcedefinition.apiextensions.k8s.io/leaderelections.sluice.dev',
      'customresourcedefinition.apiextensions.k8s.io/ratelimitpolicies.sluice.dev',
      'customresourcedefinition.apiextensions.k8s.io/taskqueues.sluice.dev',
      'customresourcedefinition.apiextensions.k8s.io/upstreams.sluice.dev',
    ]);
    const objs = await k('get', 'deploy,svc,pdb,netpol,cm,secret,sa,role,rolebinding', '-n', NS, '-o', 'name');
    expect(objs.code, objs.stderr).toBe(0);
    for (const name of ['deployment.apps/sluice-operator', 'service/sluice-webhook', 'service/sluice-discovery', 'poddisruptionbudget.policy/sluice-operator',
      'networkpolicy.networking.k8s.io/sluice-operator', 'configmap/sluice-injection', 'configmap/sluice-dashboard',
      'serviceaccount/sluice', 'role.rbac.authorization.k8s.io/sluice-operator', 'rolebinding.rbac.authorization.k8s.io/sluice-operator']) {
      expect(objs.stdout).toContain(name);
    }
    expect((await k('get', 'deploy', 'sluice-operator', '-n', NS, '-o', 'jsonpath={.spec.replicas}')).stdout).toBe('2');
    expect((await k('get', 'mutatingwebhookconfiguration', 'sluice-sidecar-injector', '-o', 'name')).code).toBe(0);
    expect((await k('get', 'clusterrole', 'sluice-operator', '-o', 'name')).code).toBe(0);
  });

  it('the operator fills the Secret and the caBundle, and a new pod in a labelled namespace comes back injected', async () => {
    injection = await startOperatorInjection();
    const secret = await client.get<KubeObject>(resourcePath(SECRETS, NS, 'sluice-webhook-tls'));
    expect(Object.keys(secret.data as object).sort()).toEqual(['ca-bundle.crt', 'ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    // Owned by the webhook configuration, so `helm uninstall` garbage-collects it.
    const mwc = await client.get<KubeObject>(resourcePath(MWC, undefined, 'sluice-sidecar-injector'));
    expect(secret.metadata.ownerReferences).toEqual([{ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', name: 'sluice-sidecar-injector', uid: mwc.metadata.uid }]);
    expect((await caBundles()).every((b) => b.length > 0)).toBe(true);

    expect((await k('create', 'namespace', 'shop')).code).toBe(0);
    expect((await k('label', 'namespace', 'shop', 'sluice.dev/injection=enabled')).code).toBe(0);
    const pod = await kubectl(server.kubeconfigPath, ['apply', '-f', '-'], { input: JSON.stringify({
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'user-1', namespace: 'shop', labels: { app: 'user-service' } },
      spec: { containers: [{ name: 'app', image: 'example/user-service:1', ports: [{ name: 'grpc', containerPort: 50051 }] }] },
    }) });
    expect(pod.code, pod.stderr).toBe(0);
    const got = await k('get', 'pod', 'user-1', '-n', 'shop', '-o', 'json');
    const spec = JSON.parse(got.stdout).spec;
    expect(spec.initContainers[0]).toMatchObject({ name: 'sluice-proxy', image: 'ghcr.io/sluice-dev/sluice-proxy:0.1.0', restartPolicy: 'Always' });
    expect(spec.initContainers[0].env).toContainEqual({ name: 'SLUICE_OPERATOR', value: 'sluice-discovery.sluice-system.svc:15010' });
    expect(spec.initContainers[0].env).toContainEqual({ name: 'SLUICE_APP_GRPC', value: '127.0.0.1:50051' });
    expect(spec.containers[0].ports[0].name).toBe('app-grpc');
  });

  it('upgrades: values change, the operator-managed caBundle and certificates survive', async () => {
    const before = await caBundles();
    const secretBefore = await client.get<KubeObject>(resourcePath(SECRETS, NS, 'sluice-webhook-tls'));
    const upgrade = await helm('upgrade', 'sluice', CHART, '--namespace', NS, '--set', 'webhook.failurePolicy=Ignore', '--set', 'operator.replicas=3', '--set', 'sidecar.image.tag=0.2.0');
    expect(upgrade.code, upgrade.stderr).toBe(0);
    const mwc = await client.get<KubeObject>(resourcePath(MWC, undefined, 'sluice-sidecar-injector'));
    expect((mwc.webhooks as { failurePolicy: string }[])[0]?.failurePolicy).toBe('Ignore');
    expect((await k('get', 'deploy', 'sluice-operator', '-n', NS, '-o', 'jsonpath={.spec.replicas}')).stdout).toBe('3');
    const secretAfter = await client.get<KubeObject>(resourcePath(SECRETS, NS, 'sluice-webhook-tls'));
    expect(secretAfter.data).toEqual(secretBefore.data);
    // The operator keeps the webhook trusted across the upgrade (it re-patches if anything dropped it).
    await eventually(async () => expect(await caBundles()).toEqual(before), { timeoutMs: 10_000, intervalMs: 100 });
    const cm = await k('get', 'cm', 'sluice-injection', '-n', NS, '-o', 'jsonpath={.data.injection\\.json}');
    expect(JSON.parse(cm.stdout).image).toBe('ghcr.io/sluice-dev/sluice-proxy:0.2.0');
    const history = await helm('history', 'sluice', '-n', NS, '-o', 'json');
    expect(JSON.parse(history.stdout).map((r: { revision: number; status: string }) => `${r.revision}:${r.status}`)).toEqual(['1:superseded', '2:deployed']);
  });

  it('uninstalls everything it installed, the operator Secret with it, but not the CRDs (helm never deletes CRDs)', async () => {
    await injection?.stop();
    injection = undefined;
    const uninstall = await helm('uninstall', 'sluice', '--namespace', NS);
    expect(uninstall.code, uninstall.stderr).toBe(0);
    const left = await eventually(async () => {
      const res = await k('get', 'deploy,svc,pdb,netpol,cm,secret,role,rolebinding', '-n', NS, '-o', 'name');
      expect(res.stdout.trim()).toBe('');
      return res;
    }, { timeoutMs: 10_000, intervalMs: 100 });
    expect(left.code).toBe(0);
    expect((await k('get', 'mutatingwebhookconfiguration', 'sluice-sidecar-injector')).code).not.toBe(0);
    expect((await k('get', 'clusterrole', 'sluice-operator')).code).not.toBe(0);
    expect((await k('get', 'crd', 'taskqueues.sluice.dev', '-o', 'name')).code).toBe(0);
  });
});
