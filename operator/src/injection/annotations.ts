/**
 * The labels and annotations users put on namespaces and pods to steer injection, and the ones
 * the injector writes. One place, so the chart, the patcher and the docs agree.
 */

/** Namespace label: `enabled` injects every new pod in the namespace. */
export const NAMESPACE_INJECTION_LABEL = 'sluice.dev/injection';
export const NAMESPACE_INJECTION_ENABLED = 'enabled';

/**
 * Pod annotation: "true" opts a pod in (in any namespace), "false" opts it out (even in an
 * enabled namespace). The same key as a *label* with value "false" keeps the webhook from being
 * called at all (objectSelector), for pods that must start even when the operator is down.
 */
export const INJECT_ANNOTATION = 'sluice.dev/inject';

/** Per-pod overrides of the sidecar's resources (Kubernetes quantities). */
export const RESOURCE_ANNOTATIONS = {
  cpuRequest: 'sluice.dev/proxy-cpu-request',
  cpuLimit: 'sluice.dev/proxy-cpu-limit',
  memoryRequest: 'sluice.dev/proxy-memory-request',
  memoryLimit: 'sluice.dev/proxy-memory-limit',
} as const;

/** Written by the injector: the sidecar image this pod was injected with. */
export const INJECTED_ANNOTATION = 'sluice.dev/injected';

/**
 * Written by the injector as a *label* (annotations cannot be selected): lets a PodMonitor, a
 * NetworkPolicy or `kubectl get pods -l sluice.dev/proxy=injected` find every injected pod.
 */
export const PROXY_LABEL = 'sluice.dev/proxy';
export const PROXY_LABEL_VALUE = 'injected';

/** The sidecar's container name; its presence is what makes injection idempotent. */
export const SIDECAR_CONTAINER_NAME = 'sluice-proxy';
