import { compilePlan } from '../../lib/policy/compile.ts';
import type { Plan } from '../../lib/policy/plan.ts';
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

/**
 * A policy object compiled on its own, as its sidecars compile it: the reconcilers read settings
 * (TTLs, autoscaling) from here, so a default is applied in lib/policy once and means the same in
 * the operator and the sidecar. Undefined when the object does not compile (not accepted).
 */
export function compiledPolicy(obj: KubeObject): Plan | undefined {
  try {
    return compilePlan([policyDocument(obj)]);
  } catch {
    return undefined;
  }
}
