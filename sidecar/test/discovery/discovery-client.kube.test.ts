/**
 * The sidecar's PolicyDiscovery client against a real operator and the Kubernetes API test
 * server: ACK/NACK with last known good, pod authentication, reconnect.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyValidationError } from '../../../lib/policy/errors.ts';
import { compilePlan } from '../../../lib/policy/compile.ts';
import { eventually } from '../../../test/helpers/eventually.ts';
import { PolicyStore, type CompileSnapshot } from '../../src/config/policy-store.ts';
import { DiscoveryClient } from '../../src/discovery/discovery-client.ts';
import { silentLogger } from '../../../lib/log.ts';
import { condition, rateLimitPolicy, startOperator, TestCluster, type StartedOperator } from '../../../operator/test/helpers/cluster.ts';
import type { KubeObject } from '../../../operator/src/kube-client.ts';

let cluster: TestCluster;
let op: StartedOperator;
const clients: DiscoveryClient[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start(['shop', 'skew']);
  op = await startOperator(cluster);
});

afterAll(async () => {
  for (const c of clients) await c.close();
  await op?.operator.stop();
  await cluster?.stop();
});

async function connect(pod: KubeObject, opts: { tokenFile?: string; compile?: CompileSnapshot; targets?: string[] } = {}) {
  const store = new PolicyStore(opts.compile ? { compileSnapshot: opts.compile } : {});
  const client = new DiscoveryClient({
    targets: opts.targets ?? [op.address],
    identity: { namespace: pod.metadata.namespace as string, name: pod.metadata.name, tokenFile: opts.tokenFile ?? (await cluster.tokenFileFor(pod)) },
    sidecarId: `test-${pod.metadata.name}`,
    store,
    logger: silentLogger,
    backoff: { baseMs: 50, capMs: 500 },
  });
  clients.push(client);
  client.start();
  return { store, client };
}

describe('discovery client', () => {
  it('receives the snapshot of its pod and enforces nothing before it', async () => {
    const pod = await cluster.createPod('shop', 'api-1', { app: 'api' });
    await cluster.apply(rateLimitPolicy('api', { requests: 10, selector: { app: 'api' } }));
    const { store, client } = await connect(pod);
    expect(store.loaded).toBe(false);
    await eventually(() => {
      expect(store.loaded).toBe(true);
      expect(store.current.rateLimits.map((r) => r.id)).toEqual(['shop/api/all']);
      expect(store.source).toBe(`operator:${op.address}`);
      expect(client.connected).toBe(true);
    });
  });

  it('a sidecar NACK → Programmed=False (Rejected) with its message; the sidecar keeps its last good plan', async () => {
    // A sidecar of an older version that cannot enforce DryRun: it refuses such snapshots.
    const olderSidecar: CompileSnapshot = (resources, version) => {
      const dry = (resources as { spec?: { mode?: string } }[]).findIndex((r) => r.spec?.mode === 'DryRun');
      if (dry >= 0) throw new PolicyValidationError('config', [{ path: `resources[${dry}].spec.mode`, message: 'DryRun is not supported by this sidecar version' }]);
      return compilePlan(resources, { version });
    };
    const pod = await cluster.createPod('skew', 'old-1', { app: 'old' });
    await cluster.apply(rateLimitPolicy('old', { requests: 10, selector: { app: 'old' }, namespace: 'skew' }));
    const { store } = await connect(pod, { compile: olderSidecar });
    await eventually(async () => {
      expect(condition(await cluster.getStatus('ratelimitpolicies', 'skew', 'old'), 'Programmed')?.status).toBe('True');
    });
    const good = store.current.version;

    await cluster.kubectl('patch', 'ratelimitpolicy', 'old', '-n', 'skew', '--type=merge', '-p', '{"spec":{"mode":"DryRun"}}');
    await eventually(async () => {
      const s = await cluster.getStatus('ratelimitpolicies', 'skew', 'old');
      expect(condition(s, 'Accepted')?.status).toBe('True');
      expect(condition(s, 'Programmed')).toMatchObject({ status: 'False', reason: 'Rejected', observedGeneration: 2 });
      expect(condition(s, 'Programmed')?.message).toContain('DryRun is not supported by this sidecar version');
      expect(condition(s, 'Programmed')?.message).toContain('skew/old-1');
      expect(s.targets).toEqual({ selected: 1, programmed: 0 });
    });
    expect(store.current.version).toBe(good);
    expect(store.current.rateLimits[0]?.mode).toBe('Enforce');
    expect(store.lastRejected?.reason).toContain('DryRun is not supported');

    await cluster.kubectl('patch', 'ratelimitpolicy', 'old', '-n', 'skew', '--type=merge', '-p', '{"spec":{"mode":"Enforce"}}');
    await eventually(async () => {
      expect(condition(await cluster.getStatus('ratelimitpolicies', 'skew', 'old'), 'Programmed')).toMatchObject({ status: 'True', observedGeneration: 3 });
    });
  });

  it('a token bound to another pod is refused, and the claimed pod gets nothing', async () => {
    const victim = await cluster.createPod('shop', 'victim-1', { app: 'api' });
    const attacker = await cluster.createPod('shop', 'attacker-1', { app: 'nothing' });
    const { store, client } = await connect(victim, { tokenFile: await cluster.tokenFileFor(attacker) });
    await eventually(() => expect(client.lastError).toMatch(/PERMISSION_DENIED.*bound to pod shop\/attacker-1/));
    expect(store.loaded).toBe(false);
    await client.close();
  });

  it('a token for another audience is refused as unauthenticated', async () => {
    const pod = await cluster.createPod('shop', 'api-2', { app: 'api' });
    const { store, client } = await connect(pod, { tokenFile: await cluster.tokenFileFor(pod, 'https://kubernetes.default.svc') });
    await eventually(() => expect(client.lastError).toMatch(/UNAUTHENTICATED/));
    expect(store.loaded).toBe(false);
    await client.close();
  });

  it('a token bound to a Pod is refused once that Pod is deleted', async () => {
    const pod = await cluster.createPod('shop', 'api-gone', { app: 'api' });
    const tokenFile = await cluster.tokenFileFor(pod);
    const first = await connect(pod, { tokenFile });
    await eventually(() => expect(first.store.loaded).toBe(true));
    await first.client.close();
    await cluster.client.delete(`/api/v1/namespaces/shop/pods/api-gone?gracePeriodSeconds=0`);
    await eventually(async () => expect(await cluster.client.get('/api/v1/namespaces/shop/pods/api-gone').then(() => 'present', () => 'gone')).toBe('gone'), { timeoutMs: 30_000 });
    // The same token, as a restarted sidecar of the deleted pod would present it.
    const again = await connect(pod, { tokenFile });
    await eventually(() => expect(again.client.lastError).toMatch(/UNAUTHENTICATED|PERMISSION_DENIED/));
    expect(again.store.loaded).toBe(false);
    await again.client.close();
  });

  it('moves on to the next operator address when one does not answer', async () => {
    const pod = await cluster.createPod('shop', 'api-3', { app: 'api' });
    // The first address refuses connections; the client must back off and try the operator.
    const { store, client } = await connect(pod, { targets: ['127.0.0.1:1', op.address] });
    await eventually(() => expect(store.current.rateLimits.map((r) => r.id)).toEqual(['shop/api/all']));
    expect(client.reconnects).toBeGreaterThanOrEqual(1);
    expect(store.source).toBe(`operator:${op.address}`);
  });

  it('gets the namespace\'s TaskQueues as producible only; one it cannot compile is left out, not NACKed', async () => {
    // A sidecar that cannot compile the TaskQueue "future" (say, a field newer than itself).
    const skewed: CompileSnapshot = (resources, version) => {
      if ((resources as { kind?: string; metadata?: { name?: string } }[]).some((r) => r.kind === 'TaskQueue' && r.metadata?.name === 'future')) {
        throw new PolicyValidationError('config', [{ path: 'TaskQueue shop/future: spec', message: 'not supported by this sidecar version' }]);
      }
      return compilePlan(resources, { version });
    };
    const taskQueue = (name: string) => `apiVersion: sluice.dev/v1alpha1
kind: TaskQueue
metadata: {name: ${name}, namespace: shop}
spec:
  selector: {matchLabels: {app: ${name}-worker}}
  stream: ${name}
  consumerGroup: ${name}-workers
  delivery: {protocol: http, path: /tasks, timeout: 5s}
`;
    const pod = await cluster.createPod('shop', 'producer-1', { app: 'producer' });
    await cluster.apply(rateLimitPolicy('producer', { requests: 10, selector: { app: 'producer' } }));
    const { store } = await connect(pod, { compile: skewed });
    await eventually(() => expect(store.current.rateLimits.map((r) => r.id)).toEqual(['shop/producer/all']));
    const before = store.current.version;
    // "future" first, seen by the operator before "orders": the snapshot that brings "orders" has both.
    await cluster.apply(taskQueue('future'));
    await eventually(async () => expect(condition(await cluster.getStatus('taskqueues', 'shop', 'future'), 'Accepted')?.status).toBe('True'));
    await cluster.apply(taskQueue('orders'));
    await eventually(() => {
      expect(store.current.version).not.toBe(before);
      expect(store.current.producibleTaskQueues?.map((q) => q.id)).toEqual(['shop/orders']);
    });
    expect(store.current.taskQueues).toEqual([]);
    expect(store.current.rateLimits.map((r) => r.id)).toEqual(['shop/producer/all']);
    expect(store.lastRejected).toBeUndefined();
    const version = store.current.version;
    await eventually(async () => {
      const s = await cluster.getStatus('ratelimitpolicies', 'shop', 'producer');
      expect(condition(s, 'Programmed')).toMatchObject({ status: 'True', reason: 'Programmed' });
      expect(s.targets).toEqual({ selected: 1, programmed: 1 });
    });
    expect(store.current.version).toBe(version);
  });
});
