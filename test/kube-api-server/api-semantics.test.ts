import {
  AppsV1Api, AuthenticationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, Watch, setHeaderOptions,
  type V1Deployment,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.ts';
import type { KubeApiServer } from './server.ts';
import { rawRequest, refusal, startServer } from './test-support.ts';

let server: KubeApiServer;
let kc: KubeConfig;
let core: CoreV1Api;
let apps: AppsV1Api;
let custom: CustomObjectsApi;

beforeAll(async () => {
  ({ server, kc } = await startServer());
  core = kc.makeApiClient(CoreV1Api);
  apps = kc.makeApiClient(AppsV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
});
afterAll(() => server.stop());

const patchAs = (type: string) => setHeaderOptions('Content-Type', type);
const LE = { group: 'sluice.dev', version: 'v1alpha1', namespace: 'shop', plural: 'leaderelections' };
const leaderElection = (name: string, ttl = '10s') => ({
  apiVersion: 'sluice.dev/v1alpha1', kind: 'LeaderElection', metadata: { name },
  spec: { selector: { matchLabels: { app: 'hub' } }, ttl, renewEvery: '3s' },
});

function deployment(name: string, image = 'nginx:1.27'): V1Deployment {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'app', image, env: [{ name: 'A', value: '1' }], ports: [{ containerPort: 8080, name: 'http' }] }] },
      },
    },
  };
}

describe('resourceVersion and conflicts', () => {
  it('refuses an update carrying a stale resourceVersion with 409 Conflict', async () => {
    const cm = await core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'rv' }, data: { a: '1' } } });
    const rv1 = cm.metadata?.resourceVersion as string;
    const updated = await core.replaceNamespacedConfigMap({ name: 'rv', namespace: 'shop', body: { ...cm, data: { a: '2' } } });
    expect(Number(updated.metadata?.resourceVersion)).toBeGreaterThan(Number(rv1));
    const status = await refusal(core.replaceNamespacedConfigMap({ name: 'rv', namespace: 'shop', body: { ...cm, data: { a: '3' } } }));
    expect(status.code).toBe(409);
    expect(status.reason).toBe('Conflict');
    expect(status.message).toContain('the object has been modified');
    expect((await core.readNamespacedConfigMap({ name: 'rv', namespace: 'shop' })).data).toEqual({ a: '2' });
  });

  it('answers 409 AlreadyExists and 404 NotFound like the real server', async () => {
    await core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'dup' } } });
    const exists = await refusal(core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'dup' } } }));
    expect([exists.code, exists.reason, exists.message]).toEqual([409, 'AlreadyExists', 'configmaps "dup" already exists']);
    const missing = await refusal(core.readNamespacedConfigMap({ name: 'nope', namespace: 'shop' }));
    expect([missing.code, missing.reason, missing.message]).toEqual([404, 'NotFound', 'configmaps "nope" not found']);
    const noNs = await refusal(core.createNamespacedConfigMap({ namespace: 'ghost', body: { metadata: { name: 'x' } } }));
    expect(noNs.message).toBe('namespaces "ghost" not found');
  });

  it('requires metadata.resourceVersion when replacing a custom resource, and a no-op write keeps it', async () => {
    const le = await custom.createNamespacedCustomObject({ ...LE, body: leaderElection('needs-rv') });
    const { resourceVersion: _rv, ...meta } = le.metadata;
    const status = await refusal(custom.replaceNamespacedCustomObject({ ...LE, name: 'needs-rv', body: { ...le, metadata: meta } }));
    expect(status.code).toBe(422);
    expect(status.message).toContain('metadata.resourceVersion: Invalid value: "0x0": must be specified for an update');
    const same = await custom.replaceNamespacedCustomObject({ ...LE, name: 'needs-rv', body: le });
    expect(same.metadata.resourceVersion).toBe(le.metadata.resourceVersion);
  });
});

describe('generation and the status subresource', () => {
  it('bumps a custom resource generation for spec changes only', async () => {
    const le = await custom.createNamespacedCustomObject({ ...LE, body: leaderElection('gen') });
    expect(le.metadata.generation).toBe(1);
    const labelled = await custom.patchNamespacedCustomObject({ ...LE, name: 'gen', body: { metadata: { labels: { a: 'b' } } } }, patchAs(PatchStrategy.MergePatch));
    expect(labelled.metadata.generation).toBe(1);
    const changed = await custom.patchNamespacedCustomObject({ ...LE, name: 'gen', body: { spec: { ttl: '20s' } } }, patchAs(PatchStrategy.MergePatch));
    expect(changed.metadata.generation).toBe(2);
    const status = await custom.patchNamespacedCustomObjectStatus({ ...LE, name: 'gen', body: { status: { holder: 'pod-a', fencingToken: 7, observedGeneration: 2 } } }, patchAs(PatchStrategy.MergePatch));
    expect(status.metadata.generation).toBe(2);
    expect(status.status.holder).toBe('pod-a');
  });

  it('ignores status on create and main-resource writes, and spec on status writes', async () => {
    const created = await custom.createNamespacedCustomObject({ ...LE, body: { ...leaderElection('st'), status: { holder: 'sneaky' } } });
    expect(created.status).toBeUndefined();
    const withStatus = await custom.replaceNamespacedCustomObjectStatus({ ...LE, name: 'st', body: { ...created, spec: { ...created.spec, ttl: '99s' }, status: { holder: 'pod-b', transitions: 1 } } });
    expect(withStatus.spec.ttl).toBe('10s');
    expect(withStatus.status).toEqual({ holder: 'pod-b', transitions: 1 });
    const main = await custom.replaceNamespacedCustomObject({ ...LE, name: 'st', body: { ...withStatus, status: { holder: 'overwritten' } } });
    expect(main.status.holder).toBe('pod-b');
  });

  it('validates status writes against the schema too', async () => {
    await custom.createNamespacedCustomObject({ ...LE, body: leaderElection('bad-status') });
    const status = await refusal(custom.patchNamespacedCustomObjectStatus({ ...LE, name: 'bad-status', body: { status: { fencingToken: -1 } } }, patchAs(PatchStrategy.MergePatch)));
    expect(status.code).toBe(422);
    expect(status.message).toContain('status.fencingToken: Invalid value: -1');
  });

  it('bumps deployment generation for spec changes, not for annotations', async () => {
    const d = await apps.createNamespacedDeployment({ namespace: 'shop', body: deployment('gen-deploy') });
    expect(d.metadata?.generation).toBe(1);
    const annotated = await apps.patchNamespacedDeployment({ name: 'gen-deploy', namespace: 'shop', body: { metadata: { annotations: { note: 'x' } } } }, patchAs(PatchStrategy.MergePatch));
    expect(annotated.metadata?.generation).toBe(1);
    const changed = await apps.patchNamespacedDeployment({ name: 'gen-deploy', namespace: 'shop', body: { spec: { replicas: 5 } } }, patchAs(PatchStrategy.MergePatch));
    expect(changed.metadata?.generation).toBe(2);
  });
});

describe('watch', () => {
  it('streams ADDED, MODIFIED and DELETED events from a resourceVersion', async () => {
    const list = await custom.listNamespacedCustomObject(LE);
    const events: string[] = [];
    const ctrl = await new Watch(kc).watch('/apis/sluice.dev/v1alpha1/namespaces/shop/leaderelections', { resourceVersion: list.metadata.resourceVersion },
      (type, obj) => events.push(`${type} ${obj.metadata.name} ${obj.spec?.ttl ?? ''}`.trim()), () => undefined);
    try {
      await custom.createNamespacedCustomObject({ ...LE, body: leaderElection('watched') });
      await custom.patchNamespacedCustomObject({ ...LE, name: 'watched', body: { spec: { ttl: '30s' } } }, patchAs(PatchStrategy.MergePatch));
      await custom.deleteNamespacedCustomObject({ ...LE, name: 'watched' });
      await eventually(() => expect(events).toEqual(['ADDED watched 10s', 'MODIFIED watched 30s', 'DELETED watched 30s']));
    } finally {
      ctrl.abort();
    }
  });

  it('replays current objects as ADDED when no resourceVersion is given, filtered by label selector', async () => {
    await core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'w-a', labels: { team: 'a' } } } });
    await core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'w-b', labels: { team: 'b' } } } });
    const events: string[] = [];
    const ctrl = await new Watch(kc).watch('/api/v1/namespaces/shop/configmaps', { labelSelector: 'team=a' }, (type, obj) => events.push(`${type} ${obj.metadata.name}`), () => undefined);
    try {
      await eventually(() => expect(events).toEqual(['ADDED w-a']));
      // Moving out of the selector is a DELETED event for this watch; moving in is ADDED.
      await core.patchNamespacedConfigMap({ name: 'w-a', namespace: 'shop', body: { metadata: { labels: { team: 'c' } } } }, patchAs(PatchStrategy.MergePatch));
      await core.patchNamespacedConfigMap({ name: 'w-b', namespace: 'shop', body: { metadata: { labels: { team: 'a' } } } }, patchAs(PatchStrategy.MergePatch));
      await eventually(() => expect(events).toEqual(['ADDED w-a', 'DELETED w-a', 'ADDED w-b']));
    } finally {
      ctrl.abort();
    }
  });

  it('answers 410 Gone once the history window is exceeded, and a relist recovers', async () => {
    const { server: small, kc: smallKc } = await startServer({ historySize: 5, crdDir: null });
    try {
      const smallCore = smallKc.makeApiClient(CoreV1Api);
      const start = (await smallCore.listNamespacedConfigMap({ namespace: 'shop' })).metadata?.resourceVersion as string;
      for (let i = 0; i < 8; i++) await smallCore.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: `c${i}` } } });
      const events: { type: string; obj: any }[] = [];
      let ended: unknown = 'open';
      await new Watch(smallKc).watch('/api/v1/namespaces/shop/configmaps', { resourceVersion: start }, (type, obj) => events.push({ type, obj }), (err) => (ended = err));
      await eventually(() => expect(events.length).toBe(1));
      expect(events[0]?.type).toBe('ERROR');
      expect(events[0]?.obj).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
      await eventually(() => expect(ended).not.toBe('open'));
      const exact = await rawRequest(small, 'GET', `/api/v1/namespaces/shop/configmaps?resourceVersion=${start}&resourceVersionMatch=Exact`);
      expect(exact.status).toBe(410);
      const relist = await smallCore.listNamespacedConfigMap({ namespace: 'shop' });
      expect(relist.items.map((c) => c.metadata?.name).sort()).toEqual(['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7']);
      // A watch from the relist's resourceVersion works again.
      const fresh: string[] = [];
      const ctrl = await new Watch(smallKc).watch('/api/v1/namespaces/shop/configmaps', { resourceVersion: relist.metadata?.resourceVersion }, (type, obj) => fresh.push(`${type} ${obj.metadata.name}`), () => undefined);
      await smallCore.deleteNamespacedConfigMap({ name: 'c0', namespace: 'shop' });
      await eventually(() => expect(fresh).toEqual(['DELETED c0']));
      ctrl.abort();
    } finally {
      await small.stop();
    }
  });
});

describe('finalizers and deletion', () => {
  it('marks an object with finalizers for deletion and removes it with its last finalizer', async () => {
    await custom.createNamespacedCustomObject({ ...LE, body: { ...leaderElection('fin'), metadata: { name: 'fin', finalizers: ['sluice.dev/cleanup', 'other/x'] } } });
    const deleting = await custom.deleteNamespacedCustomObject({ ...LE, name: 'fin' });
    expect(deleting.metadata.deletionTimestamp).toBeTruthy();
    const still = await custom.getNamespacedCustomObject({ ...LE, name: 'fin' });
    expect(still.metadata.finalizers).toEqual(['sluice.dev/cleanup', 'other/x']);
    await custom.patchNamespacedCustomObject({ ...LE, name: 'fin', body: [{ op: 'remove', path: '/metadata/finalizers/1' }] }, patchAs(PatchStrategy.JsonPatch));
    expect((await custom.getNamespacedCustomObject({ ...LE, name: 'fin' })).metadata.finalizers).toEqual(['sluice.dev/cleanup']);
    await custom.patchNamespacedCustomObject({ ...LE, name: 'fin', body: { metadata: { finalizers: null } } }, patchAs(PatchStrategy.MergePatch));
    expect((await refusal(custom.getNamespacedCustomObject({ ...LE, name: 'fin' }))).code).toBe(404);
  });

  it('deletes an owner in the foreground only after its dependents are gone', async () => {
    const owner = await core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'fg-owner' } } });
    const ownerRef = { apiVersion: 'v1', kind: 'ConfigMap', name: 'fg-owner', uid: owner.metadata?.uid as string };
    await core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'fg-dep', finalizers: ['x/hold'], ownerReferences: [ownerRef] } } });
    await core.deleteNamespacedConfigMap({ name: 'fg-owner', namespace: 'shop', propagationPolicy: 'Foreground' });
    const waiting = await core.readNamespacedConfigMap({ name: 'fg-owner', namespace: 'shop' });
    expect(waiting.metadata?.finalizers).toEqual(['foregroundDeletion']);
    expect((await core.readNamespacedConfigMap({ name: 'fg-dep', namespace: 'shop' })).metadata?.deletionTimestamp).toBeTruthy();
    await core.patchNamespacedConfigMap({ name: 'fg-dep', namespace: 'shop', body: { metadata: { finalizers: null } } }, patchAs(PatchStrategy.MergePatch));
    expect((await refusal(core.readNamespacedConfigMap({ name: 'fg-owner', namespace: 'shop' }))).code).toBe(404);
  });

  it('deletes owned objects with their owner and a namespace with its contents', async () => {
    await core.createNamespace({ body: { metadata: { name: 'doomed' } } });
    const owner = await core.createNamespacedConfigMap({ namespace: 'doomed', body: { metadata: { name: 'owner' } } });
    await core.createNamespacedSecret({ namespace: 'doomed', body: { metadata: { name: 'owned', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata?.uid as string }] }, stringData: { k: 'v' } } });
    expect((await core.readNamespacedSecret({ name: 'owned', namespace: 'doomed' })).data).toEqual({ k: Buffer.from('v').toString('base64') });
    await core.deleteNamespacedConfigMap({ name: 'owner', namespace: 'doomed' });
    expect((await refusal(core.readNamespacedSecret({ name: 'owned', namespace: 'doomed' }))).code).toBe(404);
    await core.createNamespacedConfigMap({ namespace: 'doomed', body: { metadata: { name: 'held', finalizers: ['x/y'] } } });
    await core.deleteNamespace({ name: 'doomed' });
    const ns = await core.readNamespace({ name: 'doomed' });
    expect(ns.status?.phase).toBe('Terminating');
    expect((await refusal(core.createNamespacedConfigMap({ namespace: 'doomed', body: { metadata: { name: 'late' } } }))).code).toBe(403);
    await core.patchNamespacedConfigMap({ name: 'held', namespace: 'doomed', body: { metadata: { finalizers: null } } }, patchAs(PatchStrategy.MergePatch));
    expect((await refusal(core.readNamespace({ name: 'doomed' }))).code).toBe(404);
  });
});

describe('selectors and paging', () => {
  beforeAll(async () => {
    await core.createNamespace({ body: { metadata: { name: 'sel' } } });
    const pods: { name: string; labels: Record<string, string>; node: string }[] = [
      { name: 'p1', labels: { app: 'web', tier: 'front' }, node: 'n1' },
      { name: 'p2', labels: { app: 'web', tier: 'back' }, node: 'n2' },
      { name: 'p3', labels: { app: 'db' }, node: 'n1' },
    ];
    for (const p of pods) {
      await core.createNamespacedPod({ namespace: 'sel', body: { metadata: { name: p.name, labels: p.labels }, spec: { nodeName: p.node, containers: [{ name: 'c', image: 'busybox' }] } } });
    }
    await core.patchNamespacedPodStatus({ name: 'p2', namespace: 'sel', body: { status: { phase: 'Running' } } }, patchAs(PatchStrategy.MergePatch));
  });

  const names = async (labelSelector?: string, fieldSelector?: string) =>
    (await core.listNamespacedPod({ namespace: 'sel', ...(labelSelector ? { labelSelector } : {}), ...(fieldSelector ? { fieldSelector } : {}) })).items.map((p) => p.metadata?.name);

  it('filters by label selector operators', async () => {
    expect(await names('app=web')).toEqual(['p1', 'p2']);
    expect(await names('app==db')).toEqual(['p3']);
    expect(await names('app!=web')).toEqual(['p3']);
    expect(await names('tier in (front,back)')).toEqual(['p1', 'p2']);
    expect(await names('tier notin (front)')).toEqual(['p2', 'p3']);
    expect(await names('tier')).toEqual(['p1', 'p2']);
    expect(await names('!tier')).toEqual(['p3']);
    expect(await names('app=web,tier=back')).toEqual(['p2']);
  });

  it('filters by field selector', async () => {
    expect(await names(undefined, 'metadata.name=p3')).toEqual(['p3']);
    expect(await names(undefined, 'spec.nodeName=n1')).toEqual(['p1', 'p3']);
    expect(await names(undefined, 'status.phase=Running')).toEqual(['p2']);
    expect(await names(undefined, 'status.phase!=Running,metadata.namespace=sel')).toEqual(['p1', 'p3']);
    // Only the field labels a type declares are supported, as on a real cluster.
    const status = await refusal(core.listNamespacedPod({ namespace: 'sel', fieldSelector: 'spec.containers=x' }));
    expect([status.code, status.message]).toEqual([400, 'field label not supported: spec.containers']);
    expect((await refusal(custom.listNamespacedCustomObject({ ...LE, fieldSelector: 'spec.ttl=10s' }))).code).toBe(400);
  });

  it('lists across namespaces and pages with limit/continue', async () => {
    const all = await core.listPodForAllNamespaces({});
    expect(all.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`)).toEqual(['sel/p1', 'sel/p2', 'sel/p3']);
    const page1 = await core.listNamespacedPod({ namespace: 'sel', limit: 2 });
    expect(page1.items.map((p) => p.metadata?.name)).toEqual(['p1', 'p2']);
    expect(page1.metadata?.remainingItemCount).toBe(1);
    const page2 = await core.listNamespacedPod({ namespace: 'sel', limit: 2, _continue: page1.metadata?._continue as string });
    expect(page2.items.map((p) => p.metadata?.name)).toEqual(['p3']);
    expect(page2.metadata?._continue).toBeUndefined();
  });

  it('keeps pod specs immutable except for images', async () => {
    const image = await core.patchNamespacedPod({ name: 'p3', namespace: 'sel', body: { spec: { containers: [{ name: 'c', image: 'busybox:2' }] } } }, patchAs(PatchStrategy.StrategicMergePatch));
    expect(image.spec?.containers[0]?.image).toBe('busybox:2');
    const status = await refusal(core.patchNamespacedPod({ name: 'p3', namespace: 'sel', body: { spec: { containers: [{ name: 'c', args: ['x'] }] } } }, patchAs(PatchStrategy.StrategicMergePatch)));
    expect(status.code).toBe(422);
    expect(status.message).toContain('spec: Forbidden: pod updates may not change fields other than');
  });

  it('fills pod defaults the way the apiserver does', async () => {
    const p = await core.readNamespacedPod({ name: 'p1', namespace: 'sel' });
    expect(p.spec?.serviceAccountName).toBe('default');
    expect(p.spec?.containers[0]?.imagePullPolicy).toBe('Always');
    expect(p.status?.phase).toBe('Pending');
  });
});

describe('patches', () => {
  it('applies JSON patch, merge patch and strategic merge patch to built-ins', async () => {
    await apps.createNamespacedDeployment({ namespace: 'shop', body: deployment('patched') });
    const jp = await apps.patchNamespacedDeployment({ name: 'patched', namespace: 'shop', body: [{ op: 'replace', path: '/spec/replicas', value: 4 }, { op: 'add', path: '/metadata/labels', value: { x: 'y' } }] }, patchAs(PatchStrategy.JsonPatch));
    expect(jp.spec?.replicas).toBe(4);
    expect(jp.metadata?.labels).toEqual({ x: 'y' });
    const mp = await apps.patchNamespacedDeployment({ name: 'patched', namespace: 'shop', body: { metadata: { labels: { x: null, z: 'w' } } } }, patchAs(PatchStrategy.MergePatch));
    expect(mp.metadata?.labels).toEqual({ z: 'w' });
    const smp = await apps.patchNamespacedDeployment({
      name: 'patched', namespace: 'shop',
      body: { spec: { template: { spec: {
        containers: [
          { name: 'app', image: 'nginx:2', env: [{ name: 'B', value: '2' }], ports: [{ containerPort: 9090, name: 'metrics' }] },
          { name: 'sidecar', image: 'sluice:1' },
        ],
      } } } },
    }, patchAs(PatchStrategy.StrategicMergePatch));
    const containers = smp.spec?.template.spec?.containers ?? [];
    expect(containers.map((c) => `${c.name}=${c.image}`)).toEqual(['app=nginx:2', 'sidecar=sluice:1']);
    expect(containers[0]?.env?.map((e) => e.name)).toEqual(['A', 'B']);
    expect(containers[0]?.ports?.map((p) => p.containerPort)).toEqual([8080, 9090]);
    const deleted = await apps.patchNamespacedDeployment({ name: 'patched', namespace: 'shop', body: { spec: { template: { spec: { containers: [{ name: 'sidecar', $patch: 'delete' }] } } } } }, patchAs(PatchStrategy.StrategicMergePatch));
    expect(deleted.spec?.template.spec?.containers.map((c) => c.name)).toEqual(['app']);
  });

  it('refuses strategic merge patch for custom resources with 415, and supports server-side apply', async () => {
    await custom.createNamespacedCustomObject({ ...LE, body: leaderElection('smp') });
    const status = await refusal(custom.patchNamespacedCustomObject({ ...LE, name: 'smp', body: { spec: { ttl: '20s' } } }, patchAs(PatchStrategy.StrategicMergePatch)));
    expect(status.code).toBe(415);
    const applied = await rawRequest(server, 'PATCH', '/apis/sluice.dev/v1alpha1/namespaces/shop/leaderelections/applied?fieldManager=test',
      'apiVersion: sluice.dev/v1alpha1\nkind: LeaderElection\nmetadata: {name: applied}\nspec: {selector: {}, ttl: 8s, renewEvery: 2s}\n', 'application/apply-patch+yaml');
    expect(applied.status).toBe(200);
    expect(applied.body.spec.ttl).toBe('8s');
    const reapplied = await rawRequest(server, 'PATCH', '/apis/sluice.dev/v1alpha1/namespaces/shop/leaderelections/applied?fieldManager=test',
      'apiVersion: sluice.dev/v1alpha1\nkind: LeaderElection\nmetadata: {name: applied}\nspec: {selector: {}, ttl: 9s, renewEvery: 2s}\n', 'application/apply-patch+yaml');
    expect(reapplied.body.spec.ttl).toBe('9s');
    expect(reapplied.body.metadata.generation).toBe(2);
  });

  it('runs CEL transition-free rules on patched objects', async () => {
    await custom.createNamespacedCustomObject({ ...LE, body: leaderElection('cel') });
    const status = await refusal(custom.patchNamespacedCustomObject({ ...LE, name: 'cel', body: { spec: { renewEvery: '1m' } } }, patchAs(PatchStrategy.MergePatch)));
    expect(status.message).toContain('spec.renewEvery: Invalid value: "object": renewEvery must be shorter than ttl');
  });
});

describe('deployment scale subresource', () => {
  it('reads and writes spec.replicas through autoscaling/v1 Scale', async () => {
    await apps.createNamespacedDeployment({ namespace: 'shop', body: deployment('scaled') });
    const scale = await apps.readNamespacedDeploymentScale({ name: 'scaled', namespace: 'shop' });
    expect(scale.kind).toBe('Scale');
    expect(scale.spec?.replicas).toBe(2);
    expect(scale.status?.selector).toBe('app=scaled');
    const replaced = await apps.replaceNamespacedDeploymentScale({ name: 'scaled', namespace: 'shop', body: { ...scale, spec: { replicas: 7 } } });
    expect(replaced.spec?.replicas).toBe(7);
    const stale = await refusal(apps.replaceNamespacedDeploymentScale({ name: 'scaled', namespace: 'shop', body: { ...scale, spec: { replicas: 8 } } }));
    expect(stale.code).toBe(409);
    await apps.patchNamespacedDeploymentScale({ name: 'scaled', namespace: 'shop', body: { spec: { replicas: 3 } } }, patchAs(PatchStrategy.MergePatch));
    const d = await apps.readNamespacedDeployment({ name: 'scaled', namespace: 'shop' });
    expect(d.spec?.replicas).toBe(3);
    expect(d.metadata?.generation).toBe(3);
  });
});

describe('service-account tokens', () => {
  it('TokenReview accepts tokens the server minted, with the pod binding, and refuses others', async () => {
    const auth = kc.makeApiClient(AuthenticationV1Api);
    const token = server.mintServiceAccountToken({ namespace: 'shop', serviceAccount: 'worker', podName: 'worker-0', podUid: 'uid-123', audiences: ['sluice'] });
    const review = await auth.createTokenReview({ body: { spec: { token, audiences: ['sluice'] } } });
    expect(review.status?.authenticated).toBe(true);
    expect(review.status?.user?.username).toBe('system:serviceaccount:shop:worker');
    expect(review.status?.user?.extra?.['authentication.kubernetes.io/pod-name']).toEqual(['worker-0']);
    expect(review.status?.user?.extra?.['authentication.kubernetes.io/pod-uid']).toEqual(['uid-123']);
    expect(review.status?.audiences).toEqual(['sluice']);
    expect((await auth.createTokenReview({ body: { spec: { token: 'forged', audiences: ['sluice'] } } })).status?.authenticated).toBe(false);
    expect((await auth.createTokenReview({ body: { spec: { token, audiences: ['other'] } } })).status?.authenticated).toBe(false);
  });

  it('mints pod-bound tokens through the TokenRequest API, usable as bearer tokens', async () => {
    await core.createNamespacedServiceAccount({ namespace: 'shop', body: { metadata: { name: 'op' } } });
    const pod = await core.createNamespacedPod({ namespace: 'shop', body: { metadata: { name: 'op-0' }, spec: { serviceAccountName: 'op', containers: [{ name: 'c', image: 'x:1' }] } } });
    const tr = await core.createNamespacedServiceAccountToken({ name: 'op', namespace: 'shop', body: { spec: { audiences: ['api'], boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'op-0' } } } });
    const token = tr.status?.token as string;
    const review = await kc.makeApiClient(AuthenticationV1Api).createTokenReview({ body: { spec: { token, audiences: ['api'] } } });
    expect(review.status?.user?.extra?.['authentication.kubernetes.io/pod-uid']).toEqual([pod.metadata?.uid]);
    const asPod = new KubeConfig();
    asPod.loadFromOptions({
      clusters: [{ name: 'c', server: server.url, caData: Buffer.from(server.caCert as string).toString('base64') }],
      users: [{ name: 'u', token }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x',
    });
    const cms = await asPod.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace: 'shop' });
    expect(Array.isArray(cms.items)).toBe(true);
    const anonymous = await rawRequest({ ...server, auth: { adminToken: 'nope' } } as unknown as KubeApiServer, 'GET', '/api/v1/namespaces');
    expect(anonymous.status).toBe(401);
  });
});
