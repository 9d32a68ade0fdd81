/**
 * Test fixtures for the operator: the Kubernetes API test server, real kubectl against it, pods
 * with the Sluice sidecar container, in-process operators, and in-process sidecars in operator
 * mode in front of a real app server — each authenticated with a token minted for its pod.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { startKubeApiServer, type KubeApiServer } from '../../../test/kube-api-server/index.ts';
import { startApp, type TestApp } from '../../../test/helpers/app-server.ts';
import { Sidecar } from '../../../sidecar/src/sidecar.ts';
import { createLogger } from '../../../lib/log.ts';
import { Operator } from '../../src/operator.ts';
import type { OperatorOptions } from '../../src/operator-options.ts';
import { KubeClient, type KubeObject } from '../../src/kube-client.ts';
import { DEFAULT_TOKEN_AUDIENCE } from '../../src/sidecar-auth.ts';
import { SIDECAR_CONTAINER } from '../../src/pod-selection.ts';

const run = promisify(execFile);
const verbose = process.env.SLUICE_TEST_LOG === '1';

export class TestCluster {
  readonly server: KubeApiServer;
  readonly client: KubeClient;
  readonly dir = mkdtempSync(join(tmpdir(), 'sluice-op-test-'));

  private constructor(server: KubeApiServer) {
    this.server = server;
    const kc = new KubeConfig();
    kc.loadFromFile(server.kubeconfigPath);
    this.client = new KubeClient(kc);
  }

  static async start(namespaces = ['shop']): Promise<TestCluster> {
    const server = await startKubeApiServer({ namespaces, ...(process.env.SLUICE_TEST_KUBE_LOG === '1' ? { log: (l: string) => process.stderr.write(`${l}\n`) } : {}) });
    return new TestCluster(server);
  }

  get kubeconfigPath(): string {
    return this.server.kubeconfigPath;
  }

  async stop(): Promise<void> {
    this.client.close();
    await this.server.stop();
  }

  /** Real kubectl against the test server. */
  async kubectl(...args: string[]): Promise<string> {
    const { stdout } = await run('kubectl', ['--kubeconfig', this.kubeconfigPath, ...args], { timeout: 30_000 });
    return stdout;
  }

  /** `kubectl apply -f` of a YAML text (written to a temp file, like a user's manifest). */
  async apply(yaml: string): Promise<string> {
    const file = join(this.dir, `manifest-${Date.now()}-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, yaml);
    return this.kubectl('apply', '-f', file);
  }

  async createPod(namespace: string, name: string, labels: Record<string, string>, { sidecar = true } = {}): Promise<KubeObject> {
    return this.client.create(`/api/v1/namespaces/${namespace}/pods`, {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name, namespace, labels },
      spec: {
        serviceAccountName: 'default',
        ...(sidecar ? { initContainers: [{ name: SIDECAR_CONTAINER, image: 'sluice/proxy:test', restartPolicy: 'Always' }] } : {}),
        containers: [{ name: 'app', image: 'app:test' }],
      },
    });
  }

  async getStatus(plural: string, namespace: string, name: string): Promise<any> {
    return (await this.client.get(`/apis/sluice.dev/v1alpha1/namespaces/${namespace}/${plural}/${name}`)).status;
  }

  /** A projected-style token for the pod (bound to its name and uid), written to a file. */
  tokenFileFor(pod: KubeObject, audience = DEFAULT_TOKEN_AUDIENCE): string {
    const token = this.server.mintServiceAccountToken({
      namespace: pod.metadata.namespace as string,
      serviceAccount: pod.spec?.serviceAccountName ?? 'default',
      podName: pod.metadata.name,
      podUid: pod.metadata.uid as string,
      audiences: [audience],
    });
    const file = join(this.dir, `token-${pod.metadata.namespace}-${pod.metadata.name}-${Math.random().toString(36).slice(2)}`);
    writeFileSync(file, token);
    return file;
  }
}

export function operatorOptions(cluster: TestCluster, overrides: Partial<OperatorOptions> = {}): OperatorOptions {
  return {
    kubeconfig: cluster.kubeconfigPath,
    discovery: '127.0.0.1:0',
    admin: '127.0.0.1:0',
    id: `operator-${Math.random().toString(36).slice(2, 8)}`,
    leaseNamespace: 'default',
    leaseName: 'sluice-operator',
    leaseDurationMs: 2_000,
    renewDeadlineMs: 1_500,
    retryPeriodMs: 300,
    tokenAudience: DEFAULT_TOKEN_AUDIENCE,
    logLevel: verbose ? 'debug' : 'silent',
    ...overrides,
  };
}

export interface StartedOperator {
  operator: Operator;
  address: string;
  admin: string;
}

export async function startOperator(
  cluster: TestCluster,
  overrides: Partial<OperatorOptions> = {},
  { certificate }: { certificate?: { certPem: string; keyPem: string } } = {},
): Promise<StartedOperator> {
  const operator = new Operator(operatorOptions(cluster, overrides));
  // [discovery TLS] Set before start: the discovery port is bound with TLS from the first moment.
  if (certificate) await operator.discovery.setCertificate(certificate);
  const a = await operator.start();
  return { operator, address: `127.0.0.1:${a.discovery}`, admin: `http://127.0.0.1:${a.admin}` };
}

export interface PodWithSidecar {
  pod: KubeObject;
  sidecar: Sidecar;
  app: TestApp;
  url: string;
  admin: string;
  /** The sidecar's local API (queues, leadership) as the app reaches it. */
  localApi: string;
  stop(): Promise<void>;
}

/** A pod in the API plus its sidecar (operator mode) in front of a real app. */
export async function startPodWithSidecar(
  cluster: TestCluster,
  operatorAddress: string,
  namespace: string,
  name: string,
  labels: Record<string, string>,
  { redis, operatorCa, operatorServerName, appHandler }: { redis?: string; operatorCa?: string; operatorServerName?: string; appHandler?: Parameters<typeof startApp>[0] } = {},
): Promise<PodWithSidecar> {
  const pod = await cluster.createPod(namespace, name, labels);
  const app = await startApp(appHandler);
  const sidecar = new Sidecar({
    operator: operatorAddress,
    podName: name,
    podNamespace: namespace,
    tokenFile: cluster.tokenFileFor(pod),
    appHttp: app.hostPort,
    listenHttp: '127.0.0.1:0',
    listenGrpc: '127.0.0.1:0',
    admin: '127.0.0.1:0',
    localApi: '127.0.0.1:0',
    ...(redis ? { redis } : {}),
    ...(operatorCa ? { operatorCa } : {}),
    ...(operatorServerName ? { operatorServerName } : {}),
    id: `sidecar-${name}`,
    shutdownGraceMs: 500,
    logLevel: verbose ? 'debug' : 'silent',
  }, { logger: createLogger(verbose ? 'debug' : 'silent', { pod: name }) });
  const a = await sidecar.start();
  return {
    pod, sidecar, app,
    url: `http://127.0.0.1:${a.http!.port}`,
    admin: `http://127.0.0.1:${a.admin!.port}`,
    localApi: `http://127.0.0.1:${a.localApi!.port}`,
    stop: async () => {
      await sidecar.stop(200);
      await app.close();
    },
  };
}

/** Sends `n` requests and returns their status codes. */
export async function statuses(url: string, n: number, path = '/api/x'): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${url}${path}`);
    await res.arrayBuffer();
    out.push(res.status);
  }
  return out;
}

export function rateLimitPolicy(name: string, opts: { requests: number; per?: string; selector?: Record<string, string>; namespace?: string; path?: string; ruleName?: string }): string {
  return `apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata:
  name: ${name}
  namespace: ${opts.namespace ?? 'shop'}
spec:
  selector:
    matchLabels: ${JSON.stringify(opts.selector ?? { app: 'web' })}
  rules:
    - name: ${opts.ruleName ?? 'all'}
      match:
        protocol: http
        paths: [{type: ${opts.path?.startsWith('^') ? 'RegularExpression' : 'Prefix'}, value: ${JSON.stringify(opts.path ?? '/api/')}}]
      limit: {requests: ${opts.requests}, per: ${opts.per ?? '1h'}}
`;
}

export function condition(status: any, type: string): { status: string; reason: string; message: string; observedGeneration: number } | undefined {
  return status?.conditions?.find((c: { type: string }) => c.type === type);
}
