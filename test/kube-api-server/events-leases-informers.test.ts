import {
  CoordinationV1Api, CoreV1Api, CustomObjectsApi, EventsV1Api, KubeConfig, PatchStrategy, V1MicroTime, makeInformer, setHeaderOptions,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.ts';
import { kubectl } from '../helpers/kubectl.ts';
import type { KubeApiServer } from './server.ts';
import { refusal, startServer } from './test-support.ts';

let server: KubeApiServer;
let kc: KubeConfig;
const LE = { group: 'sluice.dev', version: 'v1alpha1', namespace: 'shop', plural: 'leaderelections' };
const le = (name: string) => ({ apiVersion: 'sluice.dev/v1alpha1', kind: 'LeaderElection', metadata: { name }, spec: { selector: {}, ttl: '10s', renewEvery: '3s' } });

beforeAll(async () => {
  ({ server, kc } = await startServer());
});
afterAll(() => server.stop());

describe('events', () => {
  it('are one resource seen as core/v1 and events.k8s.io/v1, and kubectl describe shows them', async () => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    const obj = await custom.createNamespacedCustomObject({ ...LE, body: le('evented') });
    const ref = { apiVersion: 'sluice.dev/v1alpha1', kind: 'LeaderElection', name: 'evented', namespace: 'shop', uid: obj.metadata.uid };
    const events = kc.makeApiClient(EventsV1Api);
    await events.createNamespacedEvent({
      namespace: 'shop',
      body: {
        metadata: { name: 'evented.1' }, eventTime: new V1MicroTime(), reportingController: 'sluice.dev/operator', reportingInstance: 'op-0',
        action: 'Elect', reason: 'LeaderElected', note: 'pod hub-0 leads with fencing token 7', type: 'Normal', regarding: ref,
      },
    });
    const core = kc.makeApiClient(CoreV1Api);
    const asCore = await core.listNamespacedEvent({ namespace: 'shop', fieldSelector: `involvedObject.uid=${obj.metadata.uid}` });
    expect(asCore.items.map((e) => [e.reason, e.message, e.involvedObject.name, e.reportingComponent])).toEqual([['LeaderElected', 'pod hub-0 leads with fencing token 7', 'evented', 'sluice.dev/operator']]);
    await core.createNamespacedEvent({ namespace: 'shop', body: { metadata: { name: 'evented.2' }, involvedObject: ref, reason: 'Renewed', message: 'lease renewed', type: 'Normal', count: 3 } });
    const asEvents = await events.listNamespacedEvent({ namespace: 'shop', fieldSelector: 'regarding.name=evented' });
    expect(asEvents.items.map((e) => `${e.reason}: ${e.note}`).sort()).toEqual(['LeaderElected: pod hub-0 leads with fencing token 7', 'Renewed: lease renewed']);
    const described = await kubectl(server.kubeconfigPath, ['describe', 'le', 'evented', '-n', 'shop']);
    expect(described.stdout).toMatch(/Events:[\s\S]*LeaderElected[\s\S]*pod hub-0 leads with fencing token 7/);
  });
});

describe('leases', () => {
  it('support the optimistic-concurrency renewals leader election relies on', async () => {
    const leases = kc.makeApiClient(CoordinationV1Api);
    const lease = await leases.createNamespacedLease({ namespace: 'shop', body: { metadata: { name: 'sluice-operator' }, spec: { holderIdentity: 'op-a', leaseDurationSeconds: 15, acquireTime: new V1MicroTime(), renewTime: new V1MicroTime() } } });
    const renewed = await leases.replaceNamespacedLease({ name: 'sluice-operator', namespace: 'shop', body: { ...lease, spec: { ...lease.spec, renewTime: new V1MicroTime() } } });
    expect(renewed.spec?.holderIdentity).toBe('op-a');
    // A second candidate racing with the stale copy loses.
    const lost = await refusal(leases.replaceNamespacedLease({ name: 'sluice-operator', namespace: 'shop', body: { ...lease, spec: { ...lease.spec, holderIdentity: 'op-b' } } }));
    expect(lost.code).toBe(409);
  });

  it('refuse MicroTime fields without six fractional digits, as the real decoder does', async () => {
    const leases = kc.makeApiClient(CoordinationV1Api);
    const status = await refusal(leases.createNamespacedLease({ namespace: 'shop', body: { metadata: { name: 'millis' }, spec: { renewTime: new Date('2026-01-01T00:00:00.123Z') } } }));
    expect(status.code).toBe(400);
    expect(status.message).toContain('parsing time "2026-01-01T00:00:00.123Z" as "2006-01-02T15:04:05.000000Z07:00"');
  });
});

describe('client-node informers', () => {
  it('list, then follow adds, updates and deletes of custom resources', async () => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    await custom.createNamespacedCustomObject({ ...LE, body: le('before') });
    const informer = makeInformer<KubernetesObject & { spec?: { ttl?: string } }>(kc, '/apis/sluice.dev/v1alpha1/namespaces/shop/leaderelections',
      () => custom.listNamespacedCustomObject(LE));
    const seen: string[] = [];
    informer.on('add', (o) => seen.push(`add ${o.metadata?.name}`));
    informer.on('update', (o) => seen.push(`update ${o.metadata?.name} ${o.spec?.ttl}`));
    informer.on('delete', (o) => seen.push(`delete ${o.metadata?.name}`));
    await informer.start();
    try {
      await eventually(() => expect(seen).toContain('add before'));
      await custom.createNamespacedCustomObject({ ...LE, body: le('after') });
      await custom.patchNamespacedCustomObject({ ...LE, name: 'after', body: { spec: { ttl: '20s' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
      await custom.deleteNamespacedCustomObject({ ...LE, name: 'before' });
      const mine = () => seen.filter((s) => / (before|after)\b/.test(s) && s !== 'add before');
      await eventually(() => expect(mine()).toEqual(['add after', 'update after 20s', 'delete before']));
      expect(informer.list('shop').map((o) => o.metadata?.name).filter((n) => n === 'after' || n === 'before')).toEqual(['after']);
    } finally {
      await informer.stop();
    }
  });
});
