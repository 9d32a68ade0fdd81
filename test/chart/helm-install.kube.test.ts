/**
 * `helm install --wait` / `upgrade` / `uninstall` of charts/sluice on the real control plane. The
 * chart's operator Deployment rolls out onto kwok's nodes; the operator itself runs as a local
 * process with the Deployment's env and the chart ServiceAccount's TokenRequest token, so RBAC is
 * the chart's own, and the audit log must show no request of it refused. The chart's webhook
 * configuration names the operator by `webhook.url` (this API server cannot reach a Service), and
 * a Pod created after the install comes back injected and passes the API server's Pod validation.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../lib/net.ts';
import { resourcePath, type KubeClient, type KubeObject } from '../../operator/src/kube-client.ts';
import { TestCluster } from '../../operator/test/helpers/cluster.ts';
import { startChartOperator, type ChartOperator } from '../cluster/chart-operator.ts';
import { eventually } from '../helpers/eventually.ts';
import { runHelm } from '../helpers/helm.ts';
import { kubectl } from '../helpers/kubectl.ts';
import { CHART } from './render-chart.ts';

const NS = 'sluice-e2e';
const RELEASE = 'sluice-e2e';
const MWC_NAME = `${RELEASE}-sidecar-injector`;
const SECRET = `${RELEASE}-webhook-tls`;
const MWC = { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'mutatingwebhookconfigurations' };
const SECRETS = { group: '', version: 'v1', plural: 'secrets' };

let cluster: TestCluster;
let client: KubeClient;
let work: string;
let webhookUrl: string;
let operator: ChartOperator | undefined;
const helm = (...args: string[]) => runHelm(args, { kubeconfig: cluster.kubeconfigPath, workDir: work });
const k = (...args: string[]) => kubectl(cluster.kubeconfigPath, args);

beforeAll(async () => {
  cluster = await TestCluster.start([NS, 'shop']);
  client = cluster.client;
  work = mkdtempSync(join(tmpdir(), 'sluice-helm-'));
  webhookUrl = `https://127.0.0.1:${await freePort()}`;
});

afterAll(async () => {
  await operator?.stop('SIGKILL');
  await helm('uninstall', RELEASE, '--namespace', NS).catch(() => {});
  await cluster?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function caBundles(): Promise<string[]> {
  const cfg = await client.get<KubeObject>(resourcePath(MWC, undefined, MWC_NAME));
  return (cfg.webhooks as { clientConfig: { caBundle?: string } }[]).map((w) => w.clientConfig.caBundle ?? '');
}

describe('helm install / upgrade / uninstall of charts/sluice', () => {
  it('installs with --wait: the operator Deployment rolls out, with its RBAC, Services, webhook, PDB, NetworkPolicy, dashboard', { timeout: 150_000 }, async () => {
    const install = await helm('install', RELEASE, CHART, '--namespace', NS, '--set', `webhook.url=${webhookUrl}`, '--wait', '--timeout', '120s');
    expect(install.code, install.stderr).toBe(0);
    expect(install.stdout).toContain('STATUS: deployed');
    expect(install.stdout).toContain('kubectl label namespace <ns> sluice.dev/injection=enabled');
    // The CRDs are the chart's copy of crds/ (already present here: helm leaves existing CRDs alone).
    const crds = (await k('get', 'crd', '-o', 'name')).stdout;
    for (const f of readdirSync(resolve(CHART, 'crds'))) expect(crds).toContain(`customresourcedefinition.apiextensions.k8s.io/${f.replace(/\.yaml$/, '')}`);
    const objs = await k('get', 'deploy,svc,pdb,netpol,cm,sa,role,rolebinding', '-n', NS, '-o', 'name');
    expect(objs.code, objs.stderr).toBe(0);
    for (const name of [`deployment.apps/${RELEASE}-operator`, `service/${RELEASE}-webhook`, `service/${RELEASE}-discovery`, `poddisruptionbudget.policy/${RELEASE}-operator`,
      `networkpolicy.networking.k8s.io/${RELEASE}-operator`, `configmap/${RELEASE}-injection`, `configmap/${RELEASE}-dashboard`,
      `serviceaccount/${RELEASE}`, `role.rbac.authorization.k8s.io/${RELEASE}-operator`, `rolebinding.rbac.authorization.k8s.io/${RELEASE}-operator`]) {
      expect(objs.stdout).toContain(name);
    }
    // --wait returned: both replicas are scheduled onto kwok nodes and Ready.
    expect((await k('get', 'deploy', `${RELEASE}-operator`, '-n', NS, '-o', 'jsonpath={.spec.replicas} {.status.readyReplicas}')).stdout).toBe('2 2');
    const mwc = await client.get<KubeObject>(resourcePath(MWC, undefined, MWC_NAME));
    expect((mwc.webhooks as { clientConfig: { url?: string } }[]).map((w) => w.clientConfig.url)).toEqual([`${webhookUrl}/mutate-pods`, `${webhookUrl}/mutate-pods/annotated`]);
  });

  it('the operator, as the chart ServiceAccount, fills the Secret and the caBundle; a new pod in a labelled namespace comes back injected', { timeout: 60_000 }, async () => {
    operator = await startChartOperator(client, { server: cluster.info.server, caCertPath: cluster.info.caCertPath, namespace: NS, release: RELEASE, webhookPort: Number(new URL(webhookUrl).port) });
    await eventually(async () => expect((await caBundles()).every((b) => b.length > 0)).toBe(true), { timeoutMs: 30_000 });
    const secret = await client.get<KubeObject>(resourcePath(SECRETS, NS, SECRET));
    expect(Object.keys(secret.data as object).sort()).toEqual(['ca-bundle.crt', 'ca.crt', 'ca.key', 'tls.crt', 'tls.key']);

    expect((await k('label', 'namespace', 'shop', 'sluice.dev/injection=enabled')).code).toBe(0);
    const pod = await eventually(async () => {
      const r = await kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], { input: JSON.stringify({
        apiVersion: 'v1', kind: 'Pod', metadata: { name: 'user-1', namespace: 'shop', labels: { app: 'user-service' } },
        spec: { containers: [{ name: 'app', image: 'example/user-service:1', ports: [{ name: 'grpc', containerPort: 50051 }] }] },
      }) });
      expect(r.code, r.stderr).toBe(0);
      return r;
    }, { timeoutMs: 20_000 });
    expect(pod.stdout).toContain('pod/user-1 created');
    const spec = JSON.parse((await k('get', 'pod', 'user-1', '-n', 'shop', '-o', 'json')).stdout).spec;
    expect(spec.initContainers[0]).toMatchObject({ name: 'sluice-proxy', restartPolicy: 'Always' });
    expect(spec.initContainers[0].env).toContainEqual({ name: 'SLUICE_OPERATOR', value: `${RELEASE}-discovery.${NS}.svc:15010` });
    expect(spec.initContainers[0].env).toContainEqual({ name: 'SLUICE_APP_GRPC', value: '127.0.0.1:50051' });
    expect(spec.containers[0].ports[0].name).toBe('app-grpc');
    // The operator reconciles as the ServiceAccount: a policy selecting the pod is Accepted.
    await cluster.apply(`apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: users, namespace: shop}
spec:
  selector: {matchLabels: {app: user-service}}
  rules:
    - name: all
      limit: {requests: 10, per: 1s}
`);
    await eventually(async () => {
      const s = await cluster.getStatus('ratelimitpolicies', 'shop', 'users');
      expect(s?.conditions?.find((c: { type: string }) => c.type === 'Accepted')?.status).toBe('True');
      expect(s?.targets?.selected).toBe(1);
    }, { timeoutMs: 30_000 });
  });

  it('upgrades: values change, the operator-managed caBundle and certificates survive', { timeout: 150_000 }, async () => {
    const before = await caBundles();
    const secretBefore = await client.get<KubeObject>(resourcePath(SECRETS, NS, SECRET));
    const upgrade = await helm('upgrade', RELEASE, CHART, '--namespace', NS, '--set', `webhook.url=${webhookUrl}`, '--set', 'webhook.failurePolicy=Ignore',
      '--set', 'operator.replicas=3', '--set', 'sidecar.image.tag=0.2.0', '--wait', '--timeout', '120s');
    expect(upgrade.code, upgrade.stderr).toBe(0);
    const mwc = await client.get<KubeObject>(resourcePath(MWC, undefined, MWC_NAME));
    expect((mwc.webhooks as { failurePolicy: string }[])[0]?.failurePolicy).toBe('Ignore');
    expect((await k('get', 'deploy', `${RELEASE}-operator`, '-n', NS, '-o', 'jsonpath={.spec.replicas} {.status.readyReplicas}')).stdout).toBe('3 3');
    const secretAfter = await client.get<KubeObject>(resourcePath(SECRETS, NS, SECRET));
    expect(secretAfter.data).toEqual(secretBefore.data);
    // The operator keeps the webhook trusted across the upgrade (it re-patches if anything dropped it).
    await eventually(async () => expect(await caBundles()).toEqual(before), { timeoutMs: 20_000, intervalMs: 200 });
    const cm = await k('get', 'cm', `${RELEASE}-injection`, '-n', NS, '-o', 'jsonpath={.data.injection\\.json}');
    expect(JSON.parse(cm.stdout).image).toBe('ghcr.io/sluice-dev/sluice-proxy:0.2.0');
    const history = await helm('history', RELEASE, '-n', NS, '-o', 'json');
    expect(JSON.parse(history.stdout).map((r: { revision: number; status: string }) => `${r.revision}:${r.status}`)).toEqual(['1:superseded', '2:deployed']);
  });

  it('the operator was never refused: no 403 for its ServiceAccount in the audit log', async () => {
    expect(operator).toBeDefined();
    const user = (operator as ChartOperator).user;
    // Its requests are in the log (the check below would prove nothing otherwise).
    const { auditEntries } = await import('../cluster/control-plane.ts');
    expect(auditEntries(cluster.info.auditLogPath).filter((e) => e.user?.username === user).length).toBeGreaterThan(10);
    expect(cluster.operatorForbidden(user)).toEqual([]);
  });

  it('uninstalls everything it installed, the operator Secret with it, but not the CRDs (helm never deletes CRDs)', { timeout: 90_000 }, async () => {
    expect(await (operator as ChartOperator).stop()).toBe(0);
    operator = undefined;
    const uninstall = await helm('uninstall', RELEASE, '--namespace', NS, '--wait', '--timeout', '60s');
    expect(uninstall.code, uninstall.stderr).toBe(0);
    await eventually(async () => {
      const res = await k('get', 'deploy,rs,svc,pdb,netpol,cm,secret,role,rolebinding', '-n', NS, '-o', 'name');
      expect(res.stdout.trim().split('\n').filter((l) => l && l !== 'configmap/kube-root-ca.crt')).toEqual([]);
    }, { timeoutMs: 60_000, intervalMs: 250 });
    expect((await k('get', 'mutatingwebhookconfiguration', MWC_NAME)).code).not.toBe(0);
    expect((await k('get', 'clusterrole', `${RELEASE}-operator`)).code).not.toBe(0);
    expect((await k('get', 'crd', 'taskqueues.sluice.dev', '-o', 'name')).code).toBe(0);
  });
});
