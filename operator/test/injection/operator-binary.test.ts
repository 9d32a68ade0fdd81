/**
 * The real `sluice-operator` process, started with the env the chart gives it, serves the webhook:
 * it issues its certificate, patches the caBundle, and a pod created through the API test server
 * comes back injected. SIGTERM stops it cleanly. This is the wiring in operator/bin, tested.
 * [discovery TLS] The same certificate secures PolicyDiscovery: the injected sidecar carries the
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
import { startKubeApiServer, type KubeApiServer, type KubeObject } from '../../../test/kube-api-server/index.ts';
import { Sidecar } from '../../../sidecar/src/sidecar.ts';
import { parseCliOptions } from '../../../sidecar/src/cli-options.ts';

const ROOT = resolve(import.meta.dirname, '../../..');
const NS = 'sluice-system';
let server: KubeApiServer;
let child: ChildProcess;
let work: string;
let stderr = '';
let injectedPod: KubeObject;

beforeAll(async () => {
  server = await startKubeApiServer({ namespaces: [NS] });
  await server.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'sluice.dev/injection': 'enabled' } } });
  await server.create({
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'sluice-sidecar-injector' },
    webhooks: [{
      name: 'namespace.inject.sluice.dev', sideEffects: 'None', admissionReviewVersions: ['v1'], failurePolicy: 'Fail', timeoutSeconds: 5,
      clientConfig: { service: { namespace: NS, name: 'sluice-webhook', path: '/mutate-pods' } },
      rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
      namespaceSelector: { matchLabels: { 'sluice.dev/injection': 'enabled' } },
    }],
  });
  work = mkdtempSync(join(tmpdir(), 'sluice-opbin-'));
  const config = join(work, 'injection.json');
  writeFileSync(config, JSON.stringify({ image: 'ghcr.io/sluice-dev/sluice-proxy:0.1.0', operatorAddress: `sluice-discovery.${NS}.svc:15010` }));
  const port = await freePort();
  server.resolveServices({ [`${NS}/sluice-webhook`]: `https://127.0.0.1:${port}` });
  child = spawn(process.execPath, [join(ROOT, 'operator/bin/sluice-operator.ts'), '--kubeconfig', server.kubeconfigPath, '--discovery', '127.0.0.1:0', '--admin', '127.0.0.1:0'], {
    cwd: ROOT,
    env: { ...process.env, POD_NAMESPACE: NS, SLUICE_OPERATOR_INJECTION_CONFIG: config, SLUICE_OPERATOR_WEBHOOK_LISTEN: `127.0.0.1:${port}` },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
});

afterAll(async () => {
  if (child.exitCode === null) child.kill('SIGKILL');
  await server.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('sluice-operator with injection on', () => {
  it('injects pods created through the API server', async () => {
    await eventually(() => expect(stderr).toContain('sidecar injection webhook listening'), { timeoutMs: 20_000, intervalMs: 100 });
    const pod = await server.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1', namespace: 'shop' }, spec: { containers: [{ name: 'app', image: 'example/app:1' }] } });
    expect(((pod.spec as { initContainers?: { name: string }[] }).initContainers ?? []).map((c) => c.name)).toEqual(['sluice-proxy']);
    const secret = server.get('v1', 'Secret', 'sluice-webhook-tls', NS) as KubeObject;
    expect(Object.keys(secret.data as object)).toContain('tls.crt');
    injectedPod = pod;
  });

  it('[discovery TLS] serves PolicyDiscovery with TLS; an injected sidecar trusts the CA and connects', { timeout: 30_000 }, async () => {
    const started = await eventually(() => {
      const line = stderr.split('\n').find((l) => l.includes('"operator started"'));
      expect(line).toBeDefined();
      return JSON.parse(line as string) as { discovery: number; discoveryTls: boolean };
    }, { timeoutMs: 20_000, intervalMs: 100 });
    expect(started.discoveryTls).toBe(true);
    const data = (server.get('v1', 'Secret', 'sluice-webhook-tls', NS) as KubeObject).data as Record<string, string>;
    const pem = (k: string) => Buffer.from(data[k] as string, 'base64').toString();
    expect(new X509Certificate(pem('tls.crt')).subjectAltName).toContain(`DNS:sluice-discovery.${NS}.svc`);
    const container = ((injectedPod.spec as { initContainers: { env: { name: string; value?: string }[] }[] }).initContainers[0])!;
    const env = Object.fromEntries(container.env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));
    expect(env.SLUICE_OPERATOR_CA).toBe(pem('ca-bundle.crt'));

    // The sidecar's own CLI parsing of the injected env (inline PEM), pointed at the test port.
    const tokenFile = join(work, 'token');
    writeFileSync(tokenFile, server.mintServiceAccountToken({
      namespace: 'shop', serviceAccount: 'default', podName: 'web-1', podUid: injectedPod.metadata.uid as string, audiences: ['sluice.dev/discovery'],
    }));
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
