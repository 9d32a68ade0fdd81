/**
 * Test fixtures for the operator on the run's real control plane (test/cluster: kube-apiserver,
 * etcd, controller-manager, scheduler, kwok): namespaces made fresh for each test file, real
 * kubectl, real Pods (scheduled onto kwok nodes), tokens from the TokenRequest API bound to those
 * Pods, in-process operators that act as the chart's own service account (so RBAC is enforced),
 * and in-process sidecars in operator mode in front of a real app server.
 *
 * Files that use it belong to the `kube` vitest project (`*.kube.test.ts`), whose files run one
 * at a time: each starts an operator that watches every namespace, and some change cluster-scoped
 * objects (webhook configurations), so two at once would see each other's work.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { KubeConfig } from '@kubernetes/client-node';
import { startApp, type TestApp } from '../../../test/helpers/app-server.ts';
import { eventually } from '../../../test/helpers/eventually.ts';
import { runCommand } from '../../../test/helpers/run-command.ts';
import { auditEntries } from '../../../test/cluster/control-plane.ts';
import { OPERATOR_RELEASE, type ClusterInfo } from '../../../test/cluster/cluster-info.ts';
import { kubeconfig } from '../../../test/cluster/pki.ts';
import { Sidecar } from '../../../sidecar/src/sidecar.ts';
import { createLogger } from '../../../lib/log.ts';
import { Operator } from '../../src/operator.ts';
import type { OperatorOptions } from '../../src/operator-options.ts';
import { isNotFound } from '../../src/errors.ts';
import { KubeClient, type KubeObject } from '../../src/kube-client.ts';
import { emptyNamespace } from './empty-namespace.ts';
import { DEFAULT_TOKEN_AUDIENCE } from '../../src/sidecar-auth.ts';
import { SIDECAR_CONTAINER } from '../../src/pod-selection.ts';

const verbose = process.env.SLUICE_TEST_LOG === '1';

/** The run's control plane, or a clear error when this file is not in the `kube` project. */
export function clusterInfo(): ClusterInfo {
  const info = inject('cluster');
  if (!info) throw new Error('no control plane: a test file that talks to Kubernetes must be named *.kube.test.ts (the vitest project that starts test/cluster)');
  return info;
}

/** A client authenticated with the admin kubeconfig. */
export function adminClient(info: ClusterInfo = clusterInfo()): KubeClient {
  const kc = new KubeConfig();
  kc.loadFromFile(info.kubeconfigPath);
  return new KubeClient(kc);
}

/** Asks the TokenRequest API for a service-account token, optionally bound to a Pod. */
export async function requestToken(
  client: KubeClient,
  { namespace, serviceAccount, pod, audiences, expirationSeconds = 3600 }: { namespace: string; serviceAccount: string; pod?: KubeObject; audiences?: string[]; expirationSeconds?: number },
): Promise<string> {
  const review = await client.create(`/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`, {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
    spec: {
      ...(audiences ? { audiences } : {}),
      expirationSeconds,
      ...(pod ? { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid } } : {}),
    },
  });
  return (review.status as { token: string }).token;
}

const SLUICE_PLURALS = ['ratelimitpolicies', 'circuitbreakerpolicies', 'taskqueues', 'leaderelections', 'upstreams', 'fencingpolicies'];

/**
 * Drops the finalizers of Sluice objects an earlier file left in a namespace: their operator is
 * gone, so nothing would ever remove them and the namespace would never finish terminating.
 */
async function releaseFinalizers(client: KubeClient, namespace: string): Promise<void> {
  for (const plural of SLUICE_PLURALS) {
    const list = await client.list(`/apis/sluice.dev/v1alpha1/namespaces/${namespace}/${plural}`).catch(() => undefined);
    for (const o of list?.items ?? []) {
      if (((o.metadata.finalizers as string[] | undefined) ?? []).length === 0) continue;
      await client.patch(`/apis/sluice.dev/v1alpha1/namespaces/${namespace}/${plural}/${o.metadata.name}`, { metadata: { finalizers: null } }).catch(() => {});
    }
  }
}

/** Deletes a namespace if it exists and waits until it is gone. */
async function removeNamespace(client: KubeClient, name: string): Promise<void> {
  await releaseFinalizers(client, name);
  try {
    await client.delete(`/api/v1/namespaces/${name}`);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await eventually(async () => {
    try {
      await client.get(`/api/v1/namespaces/${name}`);
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    throw new Error(`namespace ${name} is still terminating`);
  }, { timeoutMs: 90_000, intervalMs: 250 });
}

/** An empty namespace `name`: an earlier file's one emptied in place, or a new one. */
async function freshNamespace(client: KubeClient, name: string): Promise<void> {
  const existing = await client.get(`/api/v1/namespaces/${name}`).catch((err) => {
    if (isNotFound(err)) return undefined;
    throw err;
  });
  if (existing && !existing.metadata.deletionTimestamp) {
    await emptyNamespace(client, name, () => releaseFinalizers(client, name));
  } else {
    await removeNamespace(client, name);
    await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  }
  // The ServiceAccount admission plugin refuses Pods until the namespace's default account exists.
  await eventually(() => client.get(`/api/v1/namespaces/${name}/serviceaccounts/default`), { timeoutMs: 30_000, intervalMs: 100 });
}

export class TestCluster {
  readonly info: ClusterInfo;
  readonly client: KubeClient;
  readonly namespaces: string[];
  readonly dir = mkdtempSync(join(tmpdir(), 'sluice-op-test-'));
  /** A kubeconfig of the chart's operator service account, with a TokenRequest token. */
  readonly operatorKubeconfigPath: string;
  private readonly auditFrom: number;

  private constructor(info: ClusterInfo, client: KubeClient, namespaces: string[], operatorKubeconfigPath: string, auditFrom: number) {
    this.info = info;
    this.client = client;
    this.namespaces = namespaces;
    this.operatorKubeconfigPath = operatorKubeconfigPath;
    this.auditFrom = auditFrom;
  }

  /**
   * `namespaces` are made fresh; `absent` ones are deleted and waited for, for a test whose own
   * manifests create them.
   */
  static async start(namespaces = ['shop'], { absent = [] }: { absent?: string[] } = {}): Promise<TestCluster> {
    const info = clusterInfo();
    if (namespaces.includes(OPERATOR_RELEASE.namespace)) throw new Error(`${OPERATOR_RELEASE.namespace} holds the operator's RBAC for the whole run: use it, do not recreate it`);
    const client = adminClient(info);
    const auditFrom = auditEntries(info.auditLogPath).length;
    // What an earlier file left behind: its namespaces (made fresh below), the operator's Lease
    // (a dead holder would make the next operator wait out its term) and webhook configurations
    // (a webhook nobody serves would refuse or slow every Pod).
    await Promise.all([...namespaces.map((ns) => freshNamespace(client, ns)), ...absent.map((ns) => removeNamespace(client, ns))]);
    await client.delete(`/apis/coordination.k8s.io/v1/namespaces/${OPERATOR_RELEASE.namespace}/leases/${OPERATOR_RELEASE.leaseName}`).catch(() => {});
    await client.delete('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations').catch(() => {});
    await client.delete(`/api/v1/namespaces/${OPERATOR_RELEASE.namespace}/secrets/sluice-webhook-tls`).catch(() => {});
    const token = await requestToken(client, { namespace: OPERATOR_RELEASE.namespace, serviceAccount: OPERATOR_RELEASE.serviceAccount });
    const dir = mkdtempSync(join(tmpdir(), 'sluice-operator-kubeconfig-'));
    const operatorKubeconfigPath = join(dir, 'operator.kubeconfig');
    writeFileSync(operatorKubeconfigPath, kubeconfig(info.server, info.caCertPath, { token }), { mode: 0o600 });
    return new TestCluster(info, client, namespaces, operatorKubeconfigPath, auditFrom);
  }

  get kubeconfigPath(): string {
    return this.info.kubeconfigPath;
  }

  /**
   * Requests the operator's service account was refused since this file started: the chart's
   * RBAC must be enough for everything the operator does.
   */
  operatorForbidden(user = `system:serviceaccount:${OPERATOR_RELEASE.namespace}:${OPERATOR_RELEASE.serviceAccount}`): string[] {
    return auditEntries(this.info.auditLogPath).slice(this.auditFrom)
      .filter((e) => e.user?.username === user && e.responseStatus?.code === 403)
      .map((e) => `${e.verb} ${e.requestURI}`);
  }

  async stop(): Promise<void> {
    const forbidden = this.operatorForbidden();
    this.client.close();
    if (forbidden.length > 0) throw new Error(`the operator's service account was refused (403): ${[...new Set(forbidden)].join('; ')}`);
  }

  /** Real kubectl (built with the control plane) as the admin. */
  async kubectl(...args: string[]): Promise<string> {
    const r = await runCommand(this.info.binaries.kubectl, ['--kubeconfig', this.kubeconfigPath, ...args], { timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return r.stdout;
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

  /** A token from the TokenRequest API bound to the pod (as the kubelet projects it), written to a file. */
  async tokenFileFor(pod: KubeObject, audience = DEFAULT_TOKEN_AUDIENCE): Promise<string> {
    const token = await requestToken(this.client, {
      namespace: pod.metadata.namespace as string,
      serviceAccount: pod.spec?.serviceAccountName ?? 'default',
      pod,
      audiences: [audience],
    });
    const file = join(this.dir, `token-${pod.metadata.namespace}-${pod.metadata.name}-${Math.random().toString(36).slice(2)}`);
    writeFileSync(file, token);
    return file;
  }
}

export function operatorOptions(cluster: TestCluster, overrides: Partial<OperatorOptions> = {}): OperatorOptions {
  return {
    kubeconfig: cluster.operatorKubeconfigPath,
    discovery: '127.0.0.1:0',
    admin: '127.0.0.1:0',
    id: `operator-${Math.random().toString(36).slice(2, 8)}`,
    leaseNamespace: OPERATOR_RELEASE.namespace,
    leaseName: OPERATOR_RELEASE.leaseName,
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
  // Set before start: the discovery port is bound with TLS from the first moment.
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
    tokenFile: await cluster.tokenFileFor(pod),
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
