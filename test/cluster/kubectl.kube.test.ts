/**
 * What a user does with kubectl, on the real API server: apply the CRDs and the examples, read the
 * printer columns, describe and explain, re-apply, dry-run, see validation errors, and run a
 * Deployment whose Pods the scheduler places on kwok's nodes.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.ts';
import { kubectl } from '../helpers/kubectl.ts';
import { TestCluster } from '../../operator/test/helpers/cluster.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const REPO_CRD_DIR = join(ROOT, 'crds');
const EXAMPLES = join(ROOT, 'examples/policies.yaml');

let cluster: TestCluster;
const k = (...args: string[]) => kubectl(cluster.kubeconfigPath, args);

beforeAll(async () => {
  cluster = await TestCluster.start(['shop']);
});
afterAll(async () => {
  await cluster?.stop();
});

describe('kubectl', () => {
  it('applies the CRDs and the examples', async () => {
    const crds = await k('apply', '--server-side', '-f', REPO_CRD_DIR);
    expect(crds.code, crds.stderr).toBe(0);
    expect(crds.stdout).toContain('customresourcedefinition.apiextensions.k8s.io/ratelimitpolicies.sluice.dev serverside-applied');
    const applied = await k('apply', '-f', EXAMPLES);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout.trim().split('\n')).toEqual([
      'ratelimitpolicy.sluice.dev/user-api created',
      'circuitbreakerpolicy.sluice.dev/user-api created',
      'taskqueue.sluice.dev/orders created',
      'leaderelection.sluice.dev/push-broadcaster created',
      'fencingpolicy.sluice.dev/ledger created',
      'upstream.sluice.dev/user-service created',
    ]);
  });

  it('shows the printer columns in kubectl get', async () => {
    await cluster.client.patch('/apis/sluice.dev/v1alpha1/namespaces/shop/ratelimitpolicies/user-api/status', {
      status: {
        observedGeneration: 1, targets: { selected: 3, programmed: 2 },
        conditions: [
          { type: 'Accepted', status: 'True', reason: 'Valid', message: 'ok', lastTransitionTime: '2026-01-01T00:00:00Z' },
          { type: 'Programmed', status: 'False', reason: 'Pending', message: '2 of 3 pods', lastTransitionTime: '2026-01-01T00:00:00Z' },
        ],
      },
    });
    const rlp = await k('get', 'rlp', '-n', 'shop');
    expect(rlp.code, rlp.stderr).toBe(0);
    const [header, row] = rlp.stdout.trim().split('\n');
    expect(header?.split(/\s+/)).toEqual(['NAME', 'MODE', 'ACCEPTED', 'PROGRAMMED', 'PODS', 'SYNCED', 'AGE']);
    expect(row?.split(/\s+/).slice(0, 6)).toEqual(['user-api', 'Enforce', 'True', 'False', '3', '2']);
    const tq = await k('get', 'taskqueues', '-n', 'shop');
    expect(tq.stdout.split('\n')[0]?.split(/\s+/)).toEqual(['NAME', 'STREAM', 'READY', 'LAG', 'AGE']);
    expect(tq.stdout).toContain('shop.orders');
    const le = await k('get', 'le', '-n', 'shop', '-o', 'wide');
    expect(le.stdout.split('\n')[0]?.split(/\s+/)).toEqual(['NAME', 'HOLDER', 'TOKEN', 'TTL', 'ACCEPTED', 'AGE']);
    const all = await k('get', 'sluice', '-n', 'shop', '-o', 'name');
    expect(all.stdout.trim().split('\n').sort()).toEqual([
      'circuitbreakerpolicy.sluice.dev/user-api', 'fencingpolicy.sluice.dev/ledger', 'leaderelection.sluice.dev/push-broadcaster',
      'ratelimitpolicy.sluice.dev/user-api', 'taskqueue.sluice.dev/orders', 'upstream.sluice.dev/user-service',
    ]);
    expect((await k('get', 'pods', '-A')).code).toBe(0);
    const waited = await k('wait', '--for=condition=Accepted', 'rlp/user-api', '-n', 'shop', '--timeout=5s');
    expect(waited.stdout).toBe('ratelimitpolicy.sluice.dev/user-api condition met\n');
  });

  it('describes and explains', async () => {
    const d = await k('describe', 'rlp', 'user-api', '-n', 'shop');
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/Kind:\s+RateLimitPolicy/);
    expect(d.stdout).toMatch(/Grpc Methods:\s+example.UserService\/GetUser/);
    const e = await k('explain', 'ratelimitpolicy.spec.rules.limit');
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toContain('algorithm');
    expect(e.stdout).toContain('TokenBucket (smooth refill, allows bursts)');
  });

  it('applies again: unchanged objects stay unchanged, edits bump generation', async () => {
    const again = await k('apply', '-f', EXAMPLES);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('taskqueue.sluice.dev/orders unchanged');
    expect(again.stdout).toContain('leaderelection.sluice.dev/push-broadcaster unchanged');
    const edited = readFileSync(EXAMPLES, 'utf8').replace('renewEvery: 3s', 'renewEvery: 2s');
    const res = await kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], { input: edited });
    expect(res.stdout).toContain('leaderelection.sluice.dev/push-broadcaster configured');
    const le = await k('get', 'le', 'push-broadcaster', '-n', 'shop', '-o', 'jsonpath={.spec.renewEvery} {.metadata.generation}');
    expect(le.stdout).toBe('2s 2');
  });

  it('supports server-side dry runs and server-side apply', async () => {
    const dry = await kubectl(cluster.kubeconfigPath, ['apply', '--dry-run=server', '-f', '-'], { input: readFileSync(EXAMPLES, 'utf8').replace('ttl: 10s', 'ttl: 11s') });
    expect(dry.stdout).toContain('leaderelection.sluice.dev/push-broadcaster configured (server dry run)');
    expect((await k('get', 'le', 'push-broadcaster', '-n', 'shop', '-o', 'jsonpath={.spec.ttl}')).stdout).toBe('10s');
    const ssa = await kubectl(cluster.kubeconfigPath, ['apply', '--server-side', '-f', '-'], {
      input: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa, namespace: shop}\ndata: {a: "1"}\n',
    });
    expect(ssa.stdout).toBe('configmap/ssa serverside-applied\n');
    expect((await k('get', 'cm', 'ssa', '-n', 'shop', '-o', 'jsonpath={.data.a}')).stdout).toBe('1');
    expect((await k('delete', 'cm', 'ssa', '-n', 'shop')).code).toBe(0);
  });

  it('prints the server validation error for an invalid document', async () => {
    const bad = readFileSync(join(REPO_CRD_DIR, 'invalid/le-renew-not-shorter-than-ttl.yaml'), 'utf8');
    const res = await kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], { input: bad });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('spec.renewEvery: Invalid value: renewEvery must be shorter than ttl');
    const unknown = await kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], { input: bad.replace('ttl: 10s', 'ttl: 10s\n  surprise: 1') });
    expect(unknown.stderr).toContain('unknown field "spec.surprise"');
  });

  it('creates, rolls out and scales a deployment with the imperative commands', async () => {
    expect((await k('create', 'deployment', 'web', '--image=nginx:1.27', '--replicas=2', '-n', 'shop')).stdout).toBe('deployment.apps/web created\n');
    const rollout = await k('rollout', 'status', 'deployment/web', '-n', 'shop', '--timeout=60s');
    expect(rollout.stdout).toContain('deployment "web" successfully rolled out');
    // The scheduler placed them on kwok's nodes, and kwok runs them.
    const pods = await k('get', 'pods', '-n', 'shop', '-l', 'app=web', '-o', 'jsonpath={range .items[*]}{.spec.nodeName} {.status.phase}{"\\n"}{end}');
    const lines = pods.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l).toMatch(/^kwok-node-\d+ Running$/);
    expect((await k('scale', 'deployment/web', '--replicas=5', '-n', 'shop')).code).toBe(0);
    expect((await k('set', 'image', 'deployment/web', 'nginx=nginx:1.28', '-n', 'shop')).code).toBe(0);
    const d = await k('get', 'deployment', 'web', '-n', 'shop', '-o', 'jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.metadata.generation}');
    expect(d.stdout).toBe('5 nginx:1.28 3');
    expect((await k('rollout', 'status', 'deployment/web', '-n', 'shop', '--timeout=60s')).code).toBe(0);
    expect((await k('delete', 'deployment', 'web', '-n', 'shop')).code).toBe(0);
    // The garbage collector removes the ReplicaSets and their Pods.
    await eventually(async () => expect((await k('get', 'rs,pods', '-n', 'shop', '-l', 'app=web', '-o', 'name')).stdout).toBe(''), { timeoutMs: 60_000 });
  });

  it('deletes', async () => {
    const del = await k('delete', '-f', EXAMPLES);
    expect(del.code, del.stderr).toBe(0);
    expect(del.stdout).toContain('ratelimitpolicy.sluice.dev "user-api" deleted');
    expect((await k('get', 'rlp', '-n', 'shop')).stderr).toContain('No resources found in shop namespace.');
  });
});
