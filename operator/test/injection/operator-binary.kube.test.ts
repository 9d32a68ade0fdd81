/**
 * The real `sluice-operator` process, started with the env the chart gives it, serves the webhook:
 * it issues its certificate, patches the caBundle, and a pod created through the API server
 * comes back injected — through the real kube-apiserver, the operator acting as the chart's
 * service account. SIGTERM stops it cleanly. This is the wiring in operator/bin, tested.
 * The same certificate secures PolicyDiscovery: the injected sidecar carries the
 * CA bundle in SLUICE_OPERATOR_CA, and a sidecar started with exactly that env connects over TLS.
 */
import { X509Certificate } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/eventually.ts';
import { freePort } from '../../../lib/net.ts';
import { OPERATOR_RELEASE } from '../../../test/cluster/cluster-info.ts';
import type { KubeObject } from '../../src/kube-client.ts';
import { TestCluster } from '../helpers/cluster.ts';
import { Sidecar } from '../../../sidecar/src/sidecar.ts';
import { parseCliOptions } from '../../../sidecar/src/cli-options.ts';

const ROOT = resolve(import.meta.dirname, '../../..');
const NS = OPERATOR_RELEASE.namespace;
const MWC = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';
let cluster: TestCluster;
let child: ChildProcess;
let work: string;
let stderr = '';
let injectedPod: KubeObject;

beforeAll(async () => {
  cluster = await TestCluster.start(['shop']);
  await cluster.client.patch('/api/v1/namespaces/shop', { metadata: { labels: { 'sluice.dev/injection': 'enabled' } } });
  // The API server here cannot reach a Service: the configuration names the webhook by URL.
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  await cluster.client.create(MWC, {
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'sluice-sidecar-injector' },
    webhooks: [{
      name: 'namespace.inject.sluice.dev', sideEffects: 'None', admissionReviewVersions: ['v1'], failurePolicy: 'Fail', timeoutSeconds: 5,
      clientConfig: { url: `${url}/mutate-pods` },
      rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
      namespaceSelector: { matchLabels: { 'sluice.dev/injection': 'enabled' } },
    }],
  });
  work = mkdtempSync(join(tmpdir(), 'sluice-opbin-'));
  const config = join(work, 'injection.json');
  writeFileSync(config, JSON.stringify({ image: 'ghcr.io/sluice-dev/sluice-proxy:0.1.0', operatorAddress: `sluice-discovery.${NS}.svc:15010` }));
  child = spawn(process.execPath, [join(ROOT, 'operator/bin/sluice-operator.ts'), '--kubeconfig', cluster.operatorKubeconfigPath, '--discovery', '127.0.0.1:0', '--admin', '127.0.0.1:0'], {
    cwd: ROOT,
    env: { ...process.env, POD_NAMESPACE: NS, SLUICE_OPERATOR_INJECTION_CONFIG: config, SLUICE_OPERATOR_WEBHOOK_LISTEN: `127.0.0.1:${port}`, SLUICE_OPERATOR_WEBHOOK_URL: url },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
});

afterAll(async () => {
  if (child?.exitCode === null) child.kill('SIGKILL');
  await cluster?.client.delete(`${MWC}/sluice-sidecar-injector`).catch(() => {});
  await cluster?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('sluice-operator with injection on', () => {
  it('injects pods created through the API server', async () => {
    await eventually(() => expect(stderr).toContain('sidecar injection webhook listening'), { timeoutMs: 20_000, intervalMs: 100 });
    const pod = await eventually(() => cluster.client.create('/api/v1/namespaces/shop/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1', namespace: 'shop' }, spec: { containers: [{ name: 'app', image: 'example/app:1' }] } }), { timeoutMs: 20_000 });
    expect(((pod.spec as { initContainers?: { name: string }[] }).initContainers ?? []).map((c) => c.name)).toEqual(['sluice-proxy']);
    const secret = await cluster.client.get(`/api/v1/namespaces/${NS}/secrets/sluice-webhook-tls`);
    expect(Object.keys(secret.data as object)).toContain('tls.crt');
    injectedPod = pod;
  });

  it('serves PolicyDiscovery with TLS; an injected sidecar trusts the CA and connects', { timeout: 30_000 }, async () => {
    const started = await eventually(() => {
      const line = stderr.split('\n').find((l) => l.includes('"operator started"'));
      expect(line).toBeDefined();
      return JSON.parse(line as string) as { discovery: number; discoveryTls: boolean };
    }, { timeoutMs: 20_000, intervalMs: 100 });
    expect(started.discoveryTls).toBe(true);
    const data = (await cluster.client.get(`/api/v1/namespaces/${NS}/secrets/sluice-webhook-tls`)).data as Record<string, string>;
    const pem = (k: string) => Buffer.from(data[k] as string, 'base64').toString();
    expect(new X509Certificate(pem('tls.crt')).subjectAltName).toContain(`DNS:sluice-discovery.${NS}.svc`);
    const container = ((injectedPod.spec as { initContainers: { env: { name: string; value?: string }[] }[] }).initContainers[0])!;
    const env = Object.fromEntries(container.env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));
    expect(env.SLUICE_OPERATOR_CA).toBe(pem('ca-bundle.crt'));

    // The sidecar's own CLI parsing of the injected env (inline PEM), pointed at the test port.
    const tokenFile = await cluster.tokenFileFor(injectedPod, 'sluice.dev/discovery');
    const opts = parseCliOptions(['--operator', `127.0.0.1:${started.discovery}`, '--operator-server-name', `sluice-discovery.${NS}.svc`,
      '--pod-name', 'web-1', '--pod-namespace', 'shop', '--token-file', tokenFile, '--listen-http', '127.0.0.1:0', '--listen-grpc', '127.0.0.1:0',
      '--admin', '127.0.0.1:0', '--local-api', '127.0.0.1:0', '--log-level', 'silent'], { SLUICE_OPERATOR_CA: env.SLUICE_OPERATOR_CA });
    if (opts === 'help') throw new Error('unreachable');
    const sidecar = new Sidecar(opts);
    try {
      await sidecar.start();
      await eventually(() => {
        expect(sidecar.discovery?.tls).toBe(true);
        expect(sidecar.discovery?.connected).toBe(true);
        expect(sidecar.discovery?.snapshots).toBeGreaterThanOrEqual(1);
      }, { timeoutMs: 20_000, intervalMs: 100 });
    } finally {
      await sidecar.stop(100);
    }
  });

  it('stops on SIGTERM', async () => {
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
