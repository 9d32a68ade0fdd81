/**
 * Endpoints reach the calling sidecars apart from policy: an EndpointSlice write changes what
 * the sidecar of a calling pod sends to, without a new snapshot version and without moving the
 * Upstream's status. (The API refuses loopback addresses in EndpointSlices, so this asserts what
 * reaches the sidecar, with documentation addresses; traffic is tested in standalone mode.)
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../lib/net.ts';
import { eventually } from '../../test/helpers/eventually.ts';
import type { KubeObject } from '../src/kube-client.ts';
import { upstreamEndpoints } from '../src/upstream-endpoints.ts';
import { condition, startOperator, startPodWithSidecar, TestCluster, type PodWithSidecar, type StartedOperator } from './helpers/cluster.ts';

const upstream = (port: number) => `
apiVersion: sluice.dev/v1alpha1
kind: Upstream
metadata: {name: user-service, namespace: shop}
spec:
  selector: {matchLabels: {app: order-api}}
  service: {name: user-service, port: grpc}
  protocol: grpc
  listen: 127.0.0.1:${port}
`;

function slice(name: string, endpoints: { ip: string; ready?: boolean; serving?: boolean; terminating?: boolean }[], port = 50051): string {
  return JSON.stringify({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': 'user-service' } },
    addressType: 'IPv4',
    ports: [{ name: 'grpc', port, protocol: 'TCP' }, { name: 'metrics', port: 9090, protocol: 'TCP' }],
    endpoints: endpoints.map((e) => ({ addresses: [e.ip], conditions: { ready: e.ready ?? true, serving: e.serving ?? e.ready ?? true, terminating: e.terminating ?? false } })),
  });
}

describe('which endpoints an Upstream gets (pure)', () => {
  const ups = { kind: 'Upstream', metadata: { name: 'u', namespace: 'shop' }, spec: { service: { name: 'user-service', port: 'grpc' } } } as unknown as KubeObject;
  const s = (doc: string) => JSON.parse(doc) as KubeObject;

  it('takes ready endpoints of the Service’s slices at the named port', () => {
    const slices = [s(slice('a', [{ ip: '192.0.2.2' }, { ip: '192.0.2.1' }, { ip: '192.0.2.3', ready: false }])), s(slice('b', [{ ip: '192.0.2.4' }], 50052))];
    expect(upstreamEndpoints(ups, slices)).toEqual(['192.0.2.1:50051', '192.0.2.2:50051', '192.0.2.4:50052']);
  });

  it('falls back to serving-terminating endpoints only when none is ready', () => {
    const draining = s(slice('a', [{ ip: '192.0.2.1', ready: false, serving: true, terminating: true }, { ip: '192.0.2.2', ready: false, serving: false }]));
    expect(upstreamEndpoints(ups, [draining])).toEqual(['192.0.2.1:50051']);
    expect(upstreamEndpoints(ups, [draining, s(slice('b', [{ ip: '192.0.2.9' }]))])).toEqual(['192.0.2.9:50051']);
  });

  it('ignores other Services, other namespaces and unknown port names', () => {
    const other = s(slice('a', [{ ip: '192.0.2.1' }]));
    other.metadata.labels = { 'kubernetes.io/service-name': 'else' };
    const elsewhere = s(slice('b', [{ ip: '192.0.2.2' }]));
    elsewhere.metadata.namespace = 'other';
    expect(upstreamEndpoints(ups, [other, elsewhere])).toEqual([]);
    const byNumber = { ...ups, spec: { service: { name: 'user-service', port: 9090 } } } as unknown as KubeObject;
    expect(upstreamEndpoints(byNumber, [s(slice('c', [{ ip: '192.0.2.3' }]))])).toEqual(['192.0.2.3:9090']);
    const unknown = { ...ups, spec: { service: { name: 'user-service', port: 'http' } } } as unknown as KubeObject;
    expect(upstreamEndpoints(unknown, [s(slice('c', [{ ip: '192.0.2.3' }]))])).toEqual([]);
  });
});

describe('endpoint updates on the discovery stream', () => {
  let cluster: TestCluster;
  let op: StartedOperator;
  let caller: PodWithSidecar;

  beforeAll(async () => {
    cluster = await TestCluster.start();
    op = await startOperator(cluster);
    caller = await startPodWithSidecar(cluster, op.address, 'shop', 'order-api-1', { app: 'order-api' });
  });

  afterAll(async () => {
    await caller?.stop();
    await op?.operator.stop();
    await cluster?.stop();
  });

  const endpointsSeen = () => caller.sidecar.outbound!.runtime('shop/user-service')?.endpoints.all.map((e) => e.address) ?? [];

  it('an EndpointSlice write reaches the calling sidecar without a new policy version', async () => {
    const port = await freePort();
    await cluster.apply(upstream(port));
    await cluster.apply(slice('user-service-a', [{ ip: '192.0.2.10' }, { ip: '192.0.2.11' }]));
    await eventually(async () => {
      const s = await cluster.getStatus('upstreams', 'shop', 'user-service');
      expect(condition(s, 'Programmed')).toMatchObject({ status: 'True', observedGeneration: 1 });
      expect(endpointsSeen()).toEqual(['192.0.2.10:50051', '192.0.2.11:50051']);
    }, { timeoutMs: 15_000 });
    const version = caller.sidecar.store.current.version;
    const snapshots = caller.sidecar.discovery!.snapshots;
    const status = await cluster.getStatus('upstreams', 'shop', 'user-service');

    // A pod goes, two come, one stops being ready.
    await cluster.apply(slice('user-service-a', [{ ip: '192.0.2.11', ready: false }, { ip: '192.0.2.12' }, { ip: '192.0.2.13' }]));
    await eventually(() => expect(endpointsSeen()).toEqual(['192.0.2.12:50051', '192.0.2.13:50051']));
    await cluster.kubectl('delete', 'endpointslice', 'user-service-a', '-n', 'shop');
    await eventually(() => expect(endpointsSeen()).toEqual([]));

    expect(caller.sidecar.store.current.version).toBe(version);
    expect(caller.sidecar.discovery!.snapshots).toBe(snapshots);
    expect(caller.sidecar.discovery!.endpointUpdates).toBeGreaterThanOrEqual(3);
    const after = await cluster.getStatus('upstreams', 'shop', 'user-service');
    expect(condition(after, 'Programmed')).toEqual(condition(status, 'Programmed'));
    const table = await cluster.kubectl('get', 'upstreams', '-n', 'shop');
    expect(table).toMatch(new RegExp(`user-service\\s+user-service\\s+grpc\\s+127\\.0\\.0\\.1:${port}\\s+True\\s+True`));
  });

  it('a listen port taken on the pod: the ACK names the Upstream, its status says why, the rest stays programmed; freed, it binds', async () => {
    // A real port held open by another listener, where the calling pod's sidecar must listen.
    const holder = createServer((c) => c.destroy());
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as { port: number }).port;
    const blocked = (timeout: string) => upstream(port).replace('name: user-service, namespace', 'name: blocked, namespace').replace('protocol: grpc', `protocol: grpc\n  timeout: ${timeout}`);
    try {
      await cluster.apply(blocked('2s'));
      await eventually(async () => {
        const s = await cluster.getStatus('upstreams', 'shop', 'blocked');
        expect(condition(s, 'Accepted')).toMatchObject({ status: 'True' });
        expect(condition(s, 'Programmed')).toMatchObject({ status: 'False', reason: 'Rejected', observedGeneration: 1 });
        expect(condition(s, 'Programmed')?.message).toContain(`Upstream shop/blocked: spec.listen: cannot listen on 127.0.0.1:${port}: the port is already in use by another process or listener (EADDRINUSE)`);
        expect(s.targets).toEqual({ selected: 1, programmed: 0 });
      }, { timeoutMs: 15_000 });
      // The other Upstream of the same snapshot is in place, and says so.
      const other = await cluster.getStatus('upstreams', 'shop', 'user-service');
      expect(condition(other, 'Programmed')).toMatchObject({ status: 'True' });
      expect(caller.sidecar.outbound!.bindErrors().map((e) => e.name)).toEqual(['blocked']);
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
    // Port free; the next generation is bound and programmed.
    await cluster.apply(blocked('3s'));
    await eventually(async () => {
      const s = await cluster.getStatus('upstreams', 'shop', 'blocked');
      expect(condition(s, 'Programmed')).toMatchObject({ status: 'True', observedGeneration: 2 });
    }, { timeoutMs: 15_000 });
    expect(caller.sidecar.outbound!.bindErrors()).toEqual([]);
  });
});
