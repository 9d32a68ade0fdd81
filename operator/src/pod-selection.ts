import { selectorMatches } from '../../lib/policy/selector.ts';
import type { LabelSelector } from '../../lib/policy/types.ts';
import { SIDECAR_CONTAINER_NAME } from './injection/annotations.ts';
import type { KubeObject } from './kube-client.ts';

/** The container (native sidecar: an init container with restartPolicy Always) the injector adds. */
export const SIDECAR_CONTAINER = SIDECAR_CONTAINER_NAME;

/**
 * A pod counts as a target when it is alive (not terminating, not finished) and carries the
 * Sluice sidecar: a pod without one can never acknowledge a snapshot, and counting it would keep
 * Programmed False forever for a reason nobody can fix from the policy.
 */
export function isTargetPod(pod: KubeObject): boolean {
  if (pod.metadata.deletionTimestamp) return false;
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return false;
  const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])] as { name?: string }[];
  return containers.some((c) => c.name === SIDECAR_CONTAINER);
}

/** The pods of `pods` that `selector` selects in `namespace` (policies select in their own namespace). */
export function selectedPods(selector: LabelSelector | undefined, namespace: string, pods: readonly KubeObject[]): KubeObject[] {
  if (!selector) return [];
  return pods.filter((p) => p.metadata.namespace === namespace && selectorMatches(selector, p.metadata.labels ?? {}));
}
