// `npm run bench:propagation`: how fast a policy change reaches enforcement.
//
// Operator path: an API write (a merge patch of a RateLimitPolicy's limit, as `kubectl apply`
// would send) → the sluice-operator process (informer → index → PolicyDiscovery push) → 10
// sidecars in operator mode compile the snapshot and swap it into their PolicyStore. A change
// counts as enforced when the LAST of the 10 sidecars has swapped in the plan with the new
// generation (the engine applies it synchronously in that same store callback), so the figure is
// the slowest sidecar's. Also timed: the write until `status` says Programmed for that generation
// (what `kubectl get` shows).
//
// Side by side, the baseline: the same 10 sidecars' standalone mode, each reloading the policy
// from a local YAML file it watches (the best case of a mounted ConfigMap, minus the kubelet's
// 60–90 s sync delay, which dominates that path in a real cluster).
//
// Aim: p99 ≤ 500 ms for the operator path over 100 changes.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg as osLoadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { Plan } from '../lib/policy/plan.ts';
import { KubeClient } from '../operator/src/kube-client.ts';
import { SIDECAR_CONTAINER } from '../operator/src/pod-selection.ts';
import { DEFAULT_TOKEN_AUDIENCE } from '../operator/src/sidecar-auth.ts';
import { Sidecar } from '../sidecar/src/sidecar.ts';
import { startControlPlane } from '../test/cluster/control-plane.ts';
import { kubeconfig } from '../test/cluster/pki.ts';
import { freePort } from '../lib/net.ts';
import { NODE, ProcessGroup } from './lib/processes.ts';
import { printMarkdownTable, printTable } from './lib/table.ts';

const SIDECARS = 10;
const CHANGES = Number(process.env.BENCH_CHANGES ?? 100);
const AIM_P99_MS = 500;
const NS = 'bench';
const PATH = `/apis/sluice.dev/v1alpha1/namespaces/${NS}/ratelimitpolicies`;

const group = new ProcessGroup();
const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-prop-'));
const sidecars: Sidecar[] = [];
// The real control plane of the tests (test/cluster): kube-apiserver, etcd, controller-manager,
// scheduler and kwok, with the CRDs; the operator runs as the chart's ServiceAccount.
const server = await startControlPlane({ crdDir: resolve(import.meta.dirname, '../crds') });
const kc = new KubeConfig();
kc.loadFromFile(server.kubeconfigPath);
const client = new KubeClient(kc);

async function token(namespace: string, serviceAccount: string, spec: Record<string, unknown>): Promise<string> {
  const r = await client.create(`/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec });
  return (r.status as { token: string }).token;
}

try {
  const rbac = execFileSync(server.binaries.helm, ['template', 'sluice', resolve(import.meta.dirname, '../charts/sluice'), '--namespace', 'sluice-system',
    '--show-only', 'templates/serviceaccount.yaml', '--show-only', 'templates/clusterrole.yaml', '--show-only', 'templates/role.yaml'], { encoding: 'utf8' });
  execFileSync(server.binaries.kubectl, ['--kubeconfig', server.kubeconfigPath, 'create', 'namespace', 'sluice-system']);
  execFileSync(server.binaries.kubectl, ['--kubeconfig', server.kubeconfigPath, 'create', 'namespace', NS]);
  execFileSync(server.binaries.kubectl, ['--kubeconfig', server.kubeconfigPath, 'apply', '-f', '-'], { input: rbac });
  const operatorKubeconfig = join(dir, 'operator.kubeconfig');
  writeFileSync(operatorKubeconfig, kubeconfig(server.server, server.pki.caCert, { token: await token('sluice-system', 'sluice', { expirationSeconds: 3600 }) }));
  await waitForAsync(async () => client.get(`/api/v1/namespaces/${NS}/serviceaccounts/default`).then(() => true, () => false), 30_000, 'the default ServiceAccount');

  const operatorPort = await freePort();
  group.start('sluice-operator', NODE, [
    'operator/bin/sluice-operator.ts', '--kubeconfig', operatorKubeconfig,
    '--discovery', `127.0.0.1:${operatorPort}`, '--admin', `127.0.0.1:${await freePort()}`,
    '--id', 'bench-operator', '--lease-namespace', 'sluice-system', '--log-level', 'warn',
  ]);

  const policy = (requests: number) => ({
    apiVersion: 'sluice.dev/v1alpha1', kind: 'RateLimitPolicy',
    metadata: { name: 'bench', namespace: NS },
    spec: { selector: { matchLabels: { app: 'bench' } }, rules: [{ name: 'all', match: { protocol: 'http' }, limit: { requests, per: '1s' } }] },
  });
  await client.create(PATH, policy(1000));

  // --- 10 sidecars in operator mode, each with its pod and a token bound to it ---
  const applied: Map<number, number>[] = [];
  for (let i = 0; i < SIDECARS; i++) {
    const name = `bench-${i}`;
    const pod = await client.create(`/api/v1/namespaces/${NS}/pods`, {
      apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS, labels: { app: 'bench' } },
      spec: { initContainers: [{ name: SIDECAR_CONTAINER, image: 'x', restartPolicy: 'Always' }], containers: [{ name: 'app', image: 'x' }] },
    });
    const tokenFile = join(dir, `token-${i}`);
    writeFileSync(tokenFile, await token(NS, 'default', { audiences: [DEFAULT_TOKEN_AUDIENCE], expirationSeconds: 3600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name, uid: pod.metadata.uid } }));
    const sidecar = new Sidecar({
      operator: `127.0.0.1:${operatorPort}`, podName: name, podNamespace: NS, tokenFile,
      listenHttp: '127.0.0.1:0', listenGrpc: '127.0.0.1:0', admin: '127.0.0.1:0', localApi: '127.0.0.1:0',
      id: name, shutdownGraceMs: 100, logLevel: 'silent',
    });
    const seen = new Map<number, number>();
    applied.push(seen);
    sidecar.store.subscribe((plan) => {
      const gen = generationOf(plan);
      if (gen !== undefined && !seen.has(gen)) seen.set(gen, performance.now());
    });
    await sidecar.start();
    sidecars.push(sidecar);
  }
  await waitFor(() => applied.every((s) => s.has(1)), 60_000, 'every sidecar enforcing generation 1');

  // --- operator path: 100 changes, one at a time ---
  const enforceMs: number[] = [];
  const statusMs: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const t0 = performance.now();
    const updated = await client.patch(`${PATH}/bench`, { spec: { rules: [{ name: 'all', match: { protocol: 'http' }, limit: { requests: 1001 + i, per: '1s' } }] } });
    const gen = updated.metadata.generation as number;
    await waitFor(() => applied.every((s) => s.has(gen)), 10_000, `generation ${gen} everywhere`);
    enforceMs.push(Math.max(...applied.map((s) => s.get(gen) as number)) - t0);
    await waitForAsync(async () => {
      const s = (await client.get(`${PATH}/bench`)).status;
      return s?.conditions?.some((c: { type: string; status: string; observedGeneration: number }) => c.type === 'Programmed' && c.status === 'True' && c.observedGeneration === gen)
        && s.targets?.programmed === SIDECARS;
    }, 10_000, `status Programmed for generation ${gen}`);
    statusMs.push(performance.now() - t0);
  }

  // --- baseline: the same sidecars' standalone mode, policy from a watched file ---
  for (const s of sidecars) await s.stop(100);
  sidecars.length = 0;
  const fileApplied: Map<number, number>[] = [];
  const files: string[] = [];
  const yaml = (requests: number) => `apiVersion: sluice.dev/v1alpha1\nkind: RateLimitPolicy\nmetadata: {name: bench, namespace: ${NS}}\nspec:\n  selector: {matchLabels: {app: bench}}\n  rules:\n    - {name: all, match: {protocol: http}, limit: {requests: ${requests}, per: 1s}}\n`;
  for (let i = 0; i < SIDECARS; i++) {
    const file = join(dir, `sluice-${i}.yaml`);
    writeFileSync(file, yaml(5000));
    files.push(file);
    const sidecar = new Sidecar({
      config: file, labels: { app: 'bench' },
      listenHttp: '127.0.0.1:0', listenGrpc: '127.0.0.1:0', admin: '127.0.0.1:0', localApi: '127.0.0.1:0',
      id: `file-${i}`, shutdownGraceMs: 100, logLevel: 'silent',
    });
    const seen = new Map<number, number>();
    fileApplied.push(seen);
    sidecar.store.subscribe((plan) => {
      const req = plan.rateLimits[0]?.limit?.requests;
      if (req !== undefined && !seen.has(req)) seen.set(req, performance.now());
    });
    await sidecar.start();
    sidecars.push(sidecar);
  }
  const fileMs: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const requests = 6000 + i;
    const t0 = performance.now();
    for (const f of files) writeFileSync(f, yaml(requests));
    await waitFor(() => fileApplied.every((s) => s.has(requests)), 10_000, `file change ${requests} everywhere`);
    fileMs.push(Math.max(...fileApplied.map((s) => s.get(requests) as number)) - t0);
  }

  const row = (name: string, xs: number[]): (string | number)[] => [name, String(xs.length), pct(xs, 50), pct(xs, 90), pct(xs, 99), Math.max(...xs)];
  const headers = ['path (10 sidecars, slowest counts)', 'changes', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'];
  const rows = [
    row('API write → enforced (operator)', enforceMs),
    row('API write → status Programmed', statusMs),
    row('file write → enforced (standalone)', fileMs),
  ];
  printTable(`Policy propagation, ${SIDECARS} sidecars, ${CHANGES} changes (load average ${loadavg()})`, headers, rows);
  console.log('');
  printMarkdownTable(headers, rows);
  console.log(`\nOperator path p50 ${(pct(enforceMs, 50) / pct(fileMs, 50)).toFixed(2)}× the local file reload's.`);
  const p99 = pct(enforceMs, 99);
  console.log(`Aim: p99 API write → enforced by all ${SIDECARS} sidecars ≤ ${AIM_P99_MS} ms: ${p99.toFixed(1)} ms — ${p99 <= AIM_P99_MS ? 'met' : 'NOT met'}.`);
} finally {
  for (const s of sidecars) await s.stop(100).catch(() => {});
  client.close();
  await group.stopAll();
  await server.stop();
}

function generationOf(plan: Plan): number | undefined {
  return plan.resources.find((r) => r.metadata.name === 'bench')?.metadata.generation;
}

function pct(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function loadavg(): string {
  return (osLoadavg()[0] ?? 0).toFixed(2);
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

async function waitForAsync(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
