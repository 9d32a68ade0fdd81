/**
 * Empties a namespace in place instead of deleting and re-creating it. Deleting a namespace waits
 * for the namespace controller's sweep (about 5 s even when it is empty), and the kube test files
 * run one at a time, so that wait was paid some twenty times per run. Deleting every namespaced
 * collection ourselves takes a few requests and leaves the same clean slate.
 */
import { eventually } from '../../../test/helpers/eventually.ts';
import type { KubeClient } from '../../src/kube-client.ts';

interface ApiResource {
  name: string;
  namespaced: boolean;
  verbs: string[];
}

/** Objects a namespace's controllers create and a test relies on: kept. */
const KEPT: Record<string, string> = {
  serviceaccounts: 'metadata.name!=default',
  configmaps: 'metadata.name!=kube-root-ca.crt',
};

let collections: Promise<string[]> | undefined;

/** Every namespaced resource that can be listed and deleted as a collection, as `/api/v1/namespaces/%s/pods`-style templates. */
function namespacedCollections(client: KubeClient): Promise<string[]> {
  collections ??= (async () => {
    const groups = await client.get<{ groups: Array<{ preferredVersion: { groupVersion: string } }> }>('/apis');
    const versions = ['/api/v1', ...groups.groups.map((g) => `/apis/${g.preferredVersion.groupVersion}`)];
    const lists = await Promise.all(versions.map(async (base) => {
      const list = await client.get<{ resources: ApiResource[] }>(base);
      return list.resources
        .filter((r) => r.namespaced && !r.name.includes('/') && r.verbs.includes('deletecollection') && r.verbs.includes('list'))
        .map((r) => `${base}/namespaces/%s/${r.name}`);
    }));
    return lists.flat();
  })();
  return collections;
}

/**
 * Deletes everything in `namespace` but its default ServiceAccount and root CA ConfigMap, waits
 * until it is gone, and resets the namespace's own labels and annotations. `releaseFinalizers`
 * runs first: objects whose controller has stopped would otherwise never go.
 */
export async function emptyNamespace(client: KubeClient, namespace: string, releaseFinalizers: () => Promise<void>): Promise<void> {
  await releaseFinalizers();
  const ns = await client.get(`/api/v1/namespaces/${namespace}`);
  const labels = Object.fromEntries(Object.keys(ns.metadata.labels ?? {}).map((k) => [k, k === 'kubernetes.io/metadata.name' ? namespace : null]));
  const annotations = Object.fromEntries(Object.keys(ns.metadata.annotations ?? {}).map((k) => [k, null]));
  await client.patch(`/api/v1/namespaces/${namespace}`, { metadata: { labels, annotations } });
  const paths = (await namespacedCollections(client)).map((t) => t.replace('%s', namespace));
  const selector = (path: string) => KEPT[path.slice(path.lastIndexOf('/') + 1)];
  const deleteAll = (some: string[]) => Promise.all(some.map((path) =>
    client.request('DELETE', path, { query: { gracePeriodSeconds: '0', propagationPolicy: 'Background', fieldSelector: selector(path) } })));
  // Events are not waited for: controllers still winding down what was deleted keep reporting
  // for a moment. They are swept once more when everything else is gone.
  const isEvents = (path: string) => path.endsWith('/events');
  await deleteAll(paths);
  await eventually(async () => {
    const left = await Promise.all(paths.filter((p) => !isEvents(p)).map(async (path) => {
      const list = await client.list(path, { fieldSelector: selector(path) });
      return list.items.map((o) => `${path.slice(path.lastIndexOf('/') + 1)}/${o.metadata.name}`);
    }));
    const names = left.flat();
    if (names.length > 0) throw new Error(`namespace ${namespace} still holds ${names.slice(0, 5).join(', ')}`);
  }, { timeoutMs: 60_000, intervalMs: 100 });
  await deleteAll(paths.filter(isEvents));
}
