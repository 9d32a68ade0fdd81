/**
 * Runs `sluice-operator` as a local process the way an installed chart runs it in its pod: the
 * env of the chart's Deployment (downward-API fields resolved), the injection.json of its
 * ConfigMap, and the identity of the chart's ServiceAccount — a TokenRequest token in a
 * kubeconfig — so every request it makes is authorised by the chart's own RBAC. Only the listen
 * addresses change, to loopback ports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../../lib/net.ts';
import type { KubeClient, KubeObject } from '../../operator/src/kube-client.ts';
import { kubeconfig } from './pki.ts';

const ROOT = resolve(import.meta.dirname, '../..');

export interface ChartOperator {
  child: ChildProcess;
  /** Everything it wrote to stderr (JSON log lines). */
  log(): string;
  discovery: string;
  admin: string;
  user: string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startChartOperator(
  client: KubeClient,
  { server, caCertPath, namespace, release, webhookPort, id = 'operator-0' }: { server: string; caCertPath: string; namespace: string; release: string; webhookPort: number; id?: string },
): Promise<ChartOperator> {
  const deploy = await client.get<KubeObject>(`/apis/apps/v1/namespaces/${namespace}/deployments/${release}-operator`);
  const pod = deploy.spec.template.spec;
  const container = pod.containers[0] as { env: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[] };
  const serviceAccount = pod.serviceAccountName as string;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-chart-operator-'));

  const review = await client.create(`/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`, {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 },
  });
  const kubeconfigPath = join(dir, 'kubeconfig');
  writeFileSync(kubeconfigPath, kubeconfig(server, caCertPath, { token: (review.status as { token: string }).token }), { mode: 0o600 });

  const cm = await client.get<KubeObject>(`/api/v1/namespaces/${namespace}/configmaps/${release}-injection`);
  const injectionFile = join(dir, 'injection.json');
  writeFileSync(injectionFile, (cm.data as Record<string, string>)['injection.json'] as string);

  const env: Record<string, string> = {};
  for (const e of container.env) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = namespace;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = id;
  }
  const [discovery, admin] = [await freePort(), await freePort()];
  Object.assign(env, {
    SLUICE_OPERATOR_INJECTION_CONFIG: injectionFile,
    SLUICE_OPERATOR_DISCOVERY: `127.0.0.1:${discovery}`,
    SLUICE_OPERATOR_ADMIN: `127.0.0.1:${admin}`,
    SLUICE_OPERATOR_WEBHOOK_LISTEN: `127.0.0.1:${webhookPort}`,
    SLUICE_OPERATOR_KUBECONFIG: kubeconfigPath,
  });
  let stderr = '';
  const child = spawn(process.execPath, [join(ROOT, 'operator/bin/sluice-operator.ts')], {
    cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return {
    child,
    log: () => stderr,
    discovery: `127.0.0.1:${discovery}`,
    admin: `http://127.0.0.1:${admin}`,
    user: `system:serviceaccount:${namespace}:${serviceAccount}`,
    stop: (signal = 'SIGTERM') => new Promise((r) => {
      if (child.exitCode !== null || child.signalCode !== null) return r(child.exitCode);
      child.once('exit', (code) => r(code));
      child.kill(signal);
    }),
  };
}
