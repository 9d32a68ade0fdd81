/**
 * `helm upgrade` from the previous release's chart (git commit ef5092d, extracted with
 * `git archive` into a temporary folder) to this one, with policies already in the cluster. Helm
 * installs a chart's crds/ folder on first install only and never upgrades it, so the cluster
 * keeps the previous CRDs — whose schemas prune or refuse fields this version added — until the
 * documented step in docs/upgrade.md applies the new ones. This test plays it through: previous
 * CRDs and chart, existing resources, the step, the upgrade; then the existing resources are
 * unchanged and the new fields are stored. The run's own CRDs are put back at the end.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster } from '../../operator/test/helpers/cluster.ts';
import { runHelm } from '../helpers/helm.ts';
import { kubectl } from '../helpers/kubectl.ts';
import { CHART } from './render-chart.ts';

const PREVIOUS = 'ef5092d';
const ROOT = resolve(import.meta.dirname, '../..');
const NS = 'sluice-up';
const RELEASE = 'sluice-up';

let cluster: TestCluster;
let work: string;
let previousChart: string;
const helm = (...args: string[]) => runHelm(args, { kubeconfig: cluster.kubeconfigPath, workDir: work, timeoutMs: 180_000 });
const k = (args: string[], input?: string) => kubectl(cluster.kubeconfigPath, args, input === undefined ? {} : { input });

// A field this version added (per-key WebSocket connection limits); the previous schema has no such field.
const NEW_FIELD_POLICY = `apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: chat, namespace: shop}
spec:
  selector: {matchLabels: {app: chat}}
  rules:
    - name: conns
      match: {protocol: websocket}
      websocket: {maxConnectionsPerKey: 5}
`;
const EXISTING = `apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: users, namespace: shop}
spec:
  selector: {matchLabels: {app: users}}
  rules:
    - name: all
      limit: {requests: 10, per: 1s}
---
apiVersion: sluice.dev/v1alpha1
kind: TaskQueue
metadata: {name: orders, namespace: shop}
spec:
  selector: {matchLabels: {app: orders-worker}}
  stream: orders
  consumerGroup: orders-workers
  delivery: {protocol: http, path: /tasks, timeout: 5s}
`;

beforeAll(async () => {
  cluster = await TestCluster.start([NS, 'shop']);
  work = mkdtempSync(join(tmpdir(), 'sluice-upgrade-'));
  // The previous chart, from git history (CI clones with full history).
  execFileSync('sh', ['-c', `git -C "${ROOT}" archive ${PREVIOUS} charts/sluice | tar -x -C "${work}"`], { timeout: 60_000 });
  previousChart = join(work, 'charts/sluice');
  // Two defaults of the previous CRDs are refused by this API server (1.36 checks a default
  // against the CEL rules; the later commit wrote them whole): fixed here exactly as that commit
  // did, every other part of the previous schemas kept.
  const rlp = join(previousChart, 'crds/ratelimitpolicies.sluice.dev.yaml');
  writeFileSync(rlp, readFileSync(rlp, 'utf8').replace(/(key:\n\s+type: object\n\s+)default: \{\}/, '$1default: {source: None}'));
  const tq = join(previousChart, 'crds/taskqueues.sluice.dev.yaml');
  writeFileSync(tq, readFileSync(tq, 'utf8').replace(/(backoff:\n\s+type: object\n\s+)default: \{\}/, '$1default: {initial: 1s, max: 1m, multiplier: 2}'));
  // A cluster as the previous version left it: its CRDs.
  const r = await k(['apply', '--server-side', '--force-conflicts', '-f', join(previousChart, 'crds')]);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await helm('uninstall', RELEASE, '--namespace', NS).catch(() => {});
  // Every later file expects this version's CRDs.
  if (cluster) await k(['apply', '--server-side', '--force-conflicts', '-f', resolve(ROOT, 'crds')]);
  await cluster?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
}, 120_000);

describe(`helm upgrade from the previous chart (${PREVIOUS})`, () => {
  it('installs the previous chart, and its CRDs do not keep a field this version added', { timeout: 180_000 }, async () => {
    const install = await helm('install', RELEASE, previousChart, '--namespace', NS, '--wait', '--timeout', '150s');
    expect(install.code, install.stderr).toBe(0);
    const existing = await k(['apply', '-f', '-'], EXISTING);
    expect(existing.code, existing.stderr).toBe(0);
    // The previous schema prunes the unknown field; what is left is refused (websocket needs a property).
    const created = await k(['apply', '--validate=false', '-f', '-'], NEW_FIELD_POLICY);
    const stored = created.code === 0 ? (await k(['get', 'rlp', 'chat', '-n', 'shop', '-o', 'jsonpath={.spec.rules[0].websocket}'])).stdout : '';
    expect(stored).not.toContain('maxConnectionsPerKey');
    await k(['delete', 'rlp', 'chat', '-n', 'shop', '--ignore-not-found']);
  });

  it('helm upgrade alone leaves the previous CRDs in place, so the new field is still lost', { timeout: 180_000 }, async () => {
    const crdBefore = (await k(['get', 'crd', 'ratelimitpolicies.sluice.dev', '-o', 'jsonpath={.metadata.generation}'])).stdout;
    const upgrade = await helm('upgrade', RELEASE, CHART, '--namespace', NS, '--wait', '--timeout', '150s');
    expect(upgrade.code, upgrade.stderr).toBe(0);
    expect((await k(['get', 'crd', 'ratelimitpolicies.sluice.dev', '-o', 'jsonpath={.metadata.generation}'])).stdout).toBe(crdBefore);
    const created = await k(['apply', '--validate=false', '-f', '-'], NEW_FIELD_POLICY);
    const stored = created.code === 0 ? (await k(['get', 'rlp', 'chat', '-n', 'shop', '-o', 'jsonpath={.spec.rules[0].websocket}'])).stdout : '';
    expect(stored).not.toContain('maxConnectionsPerKey');
    await k(['delete', 'rlp', 'chat', '-n', 'shop', '--ignore-not-found']);
  });

  it('after the documented CRD step, upgrades: existing resources unchanged, new fields stored', { timeout: 240_000 }, async () => {
    const before = JSON.parse((await k(['get', 'rlp,taskqueue', '-n', 'shop', '-o', 'json'])).stdout).items as { kind: string; metadata: { name: string; uid: string; generation: number }; spec: unknown }[];
    expect(before.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(['RateLimitPolicy/users', 'TaskQueue/orders']);

    // docs/upgrade.md, step 1: the new CRDs, from the new chart, server-side.
    const step = await k(['apply', '--server-side', '--force-conflicts', '-f', join(CHART, 'crds')]);
    expect(step.code, step.stderr).toBe(0);
    const wait = await k(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '-l', 'app.kubernetes.io/part-of=sluice']);
    expect(wait.code, wait.stderr).toBe(0);
    // Step 2: helm upgrade (again: the one above ran without step 1).
    const upgrade = await helm('upgrade', RELEASE, CHART, '--namespace', NS, '--wait', '--timeout', '150s');
    expect(upgrade.code, upgrade.stderr).toBe(0);
    const history = JSON.parse((await helm('history', RELEASE, '-n', NS, '-o', 'json')).stdout) as { revision: number; status: string }[];
    expect(history.map((r) => `${r.revision}:${r.status}`)).toEqual(['1:superseded', '2:superseded', '3:deployed']);

    const after = JSON.parse((await k(['get', 'rlp,taskqueue', '-n', 'shop', '-o', 'json'])).stdout).items as typeof before;
    for (const o of before) {
      const same = after.find((a) => a.kind === o.kind && a.metadata.name === o.metadata.name);
      expect(same?.metadata.uid).toBe(o.metadata.uid);
      expect(same?.metadata.generation).toBe(o.metadata.generation);
      expect(same?.spec).toEqual(o.spec);
    }
    const created = await k(['apply', '-f', '-'], NEW_FIELD_POLICY);
    expect(created.code, created.stderr).toBe(0);
    expect((await k(['get', 'rlp', 'chat', '-n', 'shop', '-o', 'jsonpath={.spec.rules[0].websocket.maxConnectionsPerKey}'])).stdout).toBe('5');
    // The upgraded chart's RBAC is in place (the operator's new rights with it).
    const role = await k(['get', 'role', `${RELEASE}-operator`, '-n', NS, '-o', 'json']);
    expect(JSON.parse(role.stdout).rules.some((r: { resources: string[] }) => r.resources.includes('serviceaccounts'))).toBe(true);
  });
});
