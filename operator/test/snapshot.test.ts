import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compilePlan } from '../../lib/policy/compile.ts';
import { POLICY_KINDS } from '../src/kinds.ts';
import type { KubeObject } from '../src/kube-client.ts';
import { PolicyIndex } from '../src/policy-index.ts';
import { buildSnapshot } from '../src/snapshot.ts';

const policy = (name: string, generation: number, uid = `uid-${name}`): KubeObject => ({
  apiVersion: 'sluice.dev/v1alpha1', kind: 'RateLimitPolicy',
  metadata: { name, namespace: 'shop', uid, generation, resourceVersion: '42', managedFields: [{}] },
  spec: { selector: { matchLabels: { app: 'web' } }, rules: [{ name: 'r', limit: { requests: 1, per: '1s' } }] },
  status: { observedGeneration: generation },
});

describe('buildSnapshot', () => {
  it('gives the same content the same version, whatever the order', () => {
    const a = buildSnapshot([policy('a', 1), policy('b', 2)]);
    const b = buildSnapshot([policy('b', 2), policy('a', 1)]);
    expect(a.snapshot.version).toBe(b.snapshot.version);
    expect(a.snapshot.resources.map((r) => r.name)).toEqual(['a', 'b']);
  });

  it('changes the version with a generation or a re-created object (new uid)', () => {
    const v = buildSnapshot([policy('a', 1)]).snapshot.version;
    expect(buildSnapshot([policy('a', 2)]).snapshot.version).not.toBe(v);
    expect(buildSnapshot([policy('a', 1, 'uid-new')]).snapshot.version).not.toBe(v);
  });

  it('carries only what a sidecar needs, and compiles with lib/policy', () => {
    const { snapshot, contents } = buildSnapshot([policy('a', 3)]);
    const doc = JSON.parse(snapshot.resources[0]!.json);
    expect(doc.status).toBeUndefined();
    expect(doc.metadata.managedFields).toBeUndefined();
    expect(contents.get('RateLimitPolicy/shop/a')).toEqual({ uid: 'uid-a', generation: 3 });
    const plan = compilePlan(snapshot.resources.map((r) => JSON.parse(r.json)), { version: snapshot.version });
    expect(plan.rateLimits.map((r) => r.id)).toEqual(['shop/a/r']);
  });
});

const taskQueue = (name: string, opts: { generation?: number; namespace?: string; worker?: string; stream?: unknown } = {}): KubeObject => ({
  apiVersion: 'sluice.dev/v1alpha1', kind: 'TaskQueue',
  metadata: { name, namespace: opts.namespace ?? 'shop', uid: `uid-${name}`, generation: opts.generation ?? 1 },
  spec: {
    selector: { matchLabels: { app: opts.worker ?? `${name}-worker` } },
    stream: opts.stream ?? name, consumerGroup: `${name}-workers`,
    delivery: { protocol: 'http', path: '/tasks', timeout: '5s' },
  },
});

describe('buildSnapshot: producible TaskQueues', () => {
  it('carries them apart from the enforced resources, and keeps them out of the ACK-tracked contents', () => {
    const { snapshot, contents } = buildSnapshot([policy('a', 1)], [taskQueue('orders'), taskQueue('emails')]);
    expect(snapshot.resources.map((r) => r.name)).toEqual(['a']);
    expect(snapshot.producibleTaskQueues?.map((r) => `${r.kind}/${r.name}@${r.generation}`)).toEqual(['TaskQueue/emails@1', 'TaskQueue/orders@1']);
    expect([...contents.keys()]).toEqual(['RateLimitPolicy/shop/a']);
    // What the sidecar does with them: compiled without label filtering, they are TaskQueue plans.
    const plan = compilePlan(snapshot.producibleTaskQueues!.map((r) => JSON.parse(r.json)), { version: snapshot.version });
    expect(plan.taskQueues.map((q) => q.id)).toEqual(['shop/emails', 'shop/orders']);
  });

  it('changes the version when the producible set changes, and not otherwise', () => {
    const base = buildSnapshot([policy('a', 1)], [taskQueue('orders')]).snapshot.version;
    expect(buildSnapshot([policy('a', 1)], [taskQueue('orders')]).snapshot.version).toBe(base);
    expect(buildSnapshot([policy('a', 1)]).snapshot.version).not.toBe(base);
    expect(buildSnapshot([policy('a', 1)], [taskQueue('orders', { generation: 2 })]).snapshot.version).not.toBe(base);
    expect(buildSnapshot([policy('a', 1)], [taskQueue('orders'), taskQueue('emails')]).snapshot.version).not.toBe(base);
    // Selected (consumed) and producible-only are different contents.
    expect(buildSnapshot([policy('a', 1), taskQueue('orders')]).snapshot.version).not.toBe(base);
  });

  it('without producible queues, the snapshot and its version are what they were before the field existed', () => {
    const { snapshot } = buildSnapshot([policy('a', 1), policy('b', 2)], []);
    expect(snapshot.producibleTaskQueues).toBeUndefined();
    const h = createHash('sha256');
    for (const [n, g] of [['a', 1], ['b', 2]] as const) h.update(`RateLimitPolicy/shop/${n}\0uid-${n}\0${g}\n`);
    expect(snapshot.version).toBe(h.digest('hex').slice(0, 16));
  });
});

describe('PolicyIndex.producibleFor', () => {
  const pod = (name: string, labels: Record<string, string>, namespace = 'shop'): KubeObject => ({
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, uid: `uid-${name}`, labels },
    spec: { containers: [{ name: 'app' }, { name: 'sluice-proxy' }] }, status: { phase: 'Running' },
  });
  const queues = [
    taskQueue('orders', { worker: 'order-worker' }),
    taskQueue('emails'),
    taskQueue('broken', { stream: 7 }), // Invalid: never accepted, so never producible
    taskQueue('elsewhere', { namespace: 'billing', worker: 'order-api' }),
  ];
  const pods = [pod('order-api-1', { app: 'order-api' }), pod('order-worker-1', { app: 'order-worker' })];
  const index = new PolicyIndex({
    policies: (kind, ns) => (kind.kind === 'TaskQueue' ? queues.filter((q) => q.metadata.namespace === ns) : []),
    pods: (ns) => pods.filter((p) => p.metadata.namespace === ns),
  }, POLICY_KINDS);

  it('is every accepted TaskQueue of the pod\'s namespace, selected or not; consumption stays with resourcesFor', () => {
    const [producer, worker] = pods as [KubeObject, KubeObject];
    const names = (objs: KubeObject[]) => objs.map((o) => o.metadata.name);
    expect(names(index.producibleFor(producer))).toEqual(['emails', 'orders']);
    expect(names(index.resourcesFor(producer))).toEqual([]);
    expect(names(index.producibleFor(worker))).toEqual(['emails', 'orders']);
    expect(names(index.resourcesFor(worker))).toEqual(['orders']);
  });

  it('is empty when the operator does not handle TaskQueues', () => {
    const rateLimitsOnly = new PolicyIndex({ policies: () => queues, pods: () => pods }, POLICY_KINDS.filter((k) => k.kind !== 'TaskQueue'));
    expect(rateLimitsOnly.producibleFor(pods[0]!)).toEqual([]);
  });
});
