/**
 * The informer against the real API server: list+watch, 410 Gone → relist, and a relist that
 * still reports deletions that happened while it was not watching. The control plane serves
 * ConfigMap watches straight from etcd (no watch cache for them), so compacting etcd makes an old
 * resourceVersion truly expired, as a long outage would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compactEtcd } from '../../test/cluster/etcd.ts';
import { eventually } from '../../test/helpers/eventually.ts';
import { silentLogger } from '../../lib/log.ts';
import { Informer, type InformerEvent } from '../src/informer.ts';
import type { KubeClient } from '../src/kube-client.ts';
import { clusterInfo, TestCluster } from './helpers/cluster.ts';

let cluster: TestCluster;
let client: KubeClient;

beforeAll(async () => {
  cluster = await TestCluster.start(['t']);
  client = cluster.client;
});

afterAll(async () => {
  await cluster?.stop();
});

const cm = (name: string) => client.create('/api/v1/namespaces/t/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 't' }, data: { v: '1' } });

describe('Informer', () => {
  it('lists, then follows adds, updates and deletes', async () => {
    await cm('before');
    const events: string[] = [];
    const inf = new Informer({ client, path: '/api/v1/namespaces/t/configmaps', logger: silentLogger });
    inf.on((e: InformerEvent, o) => events.push(`${e}:${o.metadata.name}`));
    inf.start();
    await inf.synced;
    expect(inf.get('t/before')).toBeDefined();
    await cm('after');
    await client.patch('/api/v1/namespaces/t/configmaps/after', { data: { v: '2' } });
    await client.delete('/api/v1/namespaces/t/configmaps/before');
    await eventually(() => expect(events.filter((e) => !e.startsWith('add:kube-root-ca'))).toEqual(['add:before', 'add:after', 'update:after', 'delete:before']));
    expect(inf.get('t/after')?.data).toEqual({ v: '2' });
    inf.stop();
  });

  it('relists on 410 Gone and reports what changed while its resourceVersion was too old', async () => {
    const inf = new Informer({ client, path: '/api/v1/namespaces/t/configmaps', logger: silentLogger, backoff: { baseMs: 20, capMs: 100 } });
    await cm('doomed');
    const deleted: string[] = [];
    inf.on((e, o) => e === 'delete' && deleted.push(o.metadata.name));
    inf.start();
    await inf.synced;
    inf.stop();
    // While it is away: deletions and more writes than the server's history keeps.
    await client.delete('/api/v1/namespaces/t/configmaps/doomed');
    for (let i = 0; i < 10; i++) await cm(`churn-${i}`);
    await compactEtcd(clusterInfo().etcd);
    // Resume from the stale resourceVersion, as a watch reconnecting after an outage would.
    (inf as unknown as { stopped: boolean }).stopped = false;
    await (inf as unknown as { watch(): Promise<void> }).watch();
    await eventually(() => {
      expect(inf.relists).toBeGreaterThanOrEqual(1);
      expect(deleted).toContain('doomed');
      expect(inf.list().map((o) => o.metadata.name)).toContain('churn-9');
    });
    inf.stop();
  });
});
