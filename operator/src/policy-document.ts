import type { KubeObject } from './kube-client.ts';

/**
 * The part of a policy object that means something to a sidecar: apiVersion, kind, identity and
 * spec. Status, managedFields and annotations stay behind (they change without a new generation
 * and would only bloat every snapshot).
 */
export function policyDocument(obj: KubeObject): KubeObject {
  const m = obj.metadata;
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: {
      name: m.name,
      namespace: m.namespace,
      ...(m.uid ? { uid: m.uid } : {}),
      ...(m.generation !== undefined ? { generation: m.generation } : {}),
      ...(m.labels ? { labels: m.labels } : {}),
    },
    spec: obj.spec,
  };
}

/** `Kind/namespace/name`: how a policy is referred to across kinds (snapshots, ACK tracking). */
export const policyRef = (o: KubeObject): string => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;
