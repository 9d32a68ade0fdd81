/**
 * What keeps the operator cheap on a large cluster, against the real API server, acting as the
 * chart's ServiceAccount: the Pod informer lists in pages (the audit log shows each request), and
 * discovery identity checks require the TokenReview to vouch for the discovery audience.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeConfig } from '@kubernetes/client-node';
import { silentLogger } from '../../../lib/log.ts';
import { auditEntries } from '../../../test/cluster/control-plane.ts';
import { eventually } from '../../../test/helpers/eventually.ts';
import { Informer } from '../../src/informer.ts';
import { KubeClient, type KubeObject } from '../../src/kube-client.ts';
import { DEFAULT_TOKEN_AUDIENCE, SidecarAuthenticator } from '../../src/sidecar-auth.ts';
import { requestToken, TestCluster } from '../helpers/cluster.ts';

let cluster: TestCluster;
let operatorClient: KubeClient;
const pods: KubeObject[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start(['paged']);
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.operatorKubeconfigPath);
  operatorClient = new KubeClient(kc);
  for (let i = 0; i < 7; i++) pods.push(await cluster.createPod('paged', `p-${i}`, { app: 'paged' }));
});

afterAll(async () => {
  operatorClient?.close();
  await cluster?.stop();
});

describe('at scale', () => {
  it('lists Pods in pages and still sees every one', async () => {
    const before = auditEntries(cluster.info.auditLogPath).length;
    const inf = new Informer({ client: operatorClient, path: '/api/v1/namespaces/paged/pods', logger: silentLogger, pageSize: 3 });
    inf.start();
    await inf.synced;
    expect(inf.list().map((p) => p.metadata.name).sort()).toEqual(pods.map((p) => p.metadata.name).sort());
    await cluster.createPod('paged', 'p-late', { app: 'paged' });
    await eventually(() => expect(inf.get('paged/p-late')).toBeDefined());
    inf.stop();
    const lists = auditEntries(cluster.info.auditLogPath).slice(before)
      .filter((e) => e.verb === 'list' && String(e.requestURI).startsWith('/api/v1/namespaces/paged/pods?') && e.stage === 'ResponseComplete');
    expect(lists.map((e) => String(e.requestURI))).toHaveLength(3);
    for (const e of lists) expect(String(e.requestURI)).toContain('limit=3');
    expect(lists.filter((e) => String(e.requestURI).includes('continue='))).toHaveLength(2);
  });

  it('accepts a pod-bound token whose TokenReview names the discovery audience, and refuses one for another audience', async () => {
    const pod = pods[0] as KubeObject;
    const auth = new SidecarAuthenticator({ client: operatorClient, audience: DEFAULT_TOKEN_AUDIENCE, getPod: (ns, name) => cluster.client.get(`/api/v1/namespaces/${ns}/pods/${name}`) });
    const token = readFileSync(await cluster.tokenFileFor(pod), 'utf8');
    const hello = { podNamespace: 'paged', podName: pod.metadata.name } as Parameters<SidecarAuthenticator['authenticate']>[0];
    expect((await auth.authenticate({ ...hello, token })).metadata.uid).toBe(pod.metadata.uid);
    // The API server itself reports the audiences it checked: the operator relies on that field.
    const review = await operatorClient.create<{ status: { audiences?: string[] } }>('/apis/authentication.k8s.io/v1/tokenreviews', {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [DEFAULT_TOKEN_AUDIENCE] },
    });
    expect(review.status.audiences).toEqual([DEFAULT_TOKEN_AUDIENCE]);
    const apiToken = await requestToken(cluster.client, { namespace: 'paged', serviceAccount: 'default', pod });
    await expect(auth.authenticate({ ...hello, token: apiToken })).rejects.toMatchObject({ code: 'SLUICE_ERR_UNAUTHENTICATED' });
  });
});
