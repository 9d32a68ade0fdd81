/**
 * The opt-in NetworkPolicy: for a namespace labelled `sluice.dev/network-policy=enabled`, one
 * NetworkPolicy that lets traffic reach injected pods only on the sidecar's ports (HTTP/WebSocket,
 * gRPC, admin) and on ports the namespace declares (`sluice.dev/network-policy-ports: "9090,8443"`).
 * Without it a client that knows a pod's IP can dial the app's own port and skip every limit the
 * sidecar enforces. Pure: the namespace in, the object (or its removal) out.
 */
import type { KubeObject } from './kube-client.ts';
import { PROXY_LABEL } from './injection/annotations.ts';
import { SIDECAR_PORTS } from './injection/sidecar-container.ts';

export const NETWORK_POLICY_LABEL = 'sluice.dev/network-policy';
export const NETWORK_POLICY_PORTS_ANNOTATION = 'sluice.dev/network-policy-ports';
export const NETWORK_POLICY_NAME = 'sluice-sidecar-ingress';
/** Marks the object as the operator's, so it never deletes a policy it did not make. */
export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'sluice-operator' } as const;

export type NetworkPolicyPlan =
  | { readonly action: 'apply'; readonly policy: KubeObject }
  | { readonly action: 'remove' }
  /** Opted in, but the declared ports cannot be read: the namespace is left as it is, with the reason. */
  | { readonly action: 'invalid'; readonly message: string };

export function planNetworkPolicy(namespace: KubeObject): NetworkPolicyPlan {
  if (namespace.metadata.labels?.[NETWORK_POLICY_LABEL] !== 'enabled') return { action: 'remove' };
  const declared = namespace.metadata.annotations?.[NETWORK_POLICY_PORTS_ANNOTATION] ?? '';
  const extra: number[] = [];
  for (const part of declared.split(',').map((p) => p.trim()).filter(Boolean)) {
    const port = /^\d{1,5}$/.test(part) ? Number(part) : NaN;
    if (!(port >= 1 && port <= 65_535)) {
      return { action: 'invalid', message: `annotation ${NETWORK_POLICY_PORTS_ANNOTATION}: "${part}" is not a port number (1-65535); write e.g. "9090,8443"` };
    }
    if (!extra.includes(port)) extra.push(port);
  }
  const ports = [SIDECAR_PORTS.http, SIDECAR_PORTS.grpc, SIDECAR_PORTS.admin, ...extra.sort((a, b) => a - b)];
  return {
    action: 'apply',
    policy: {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: NETWORK_POLICY_NAME, namespace: namespace.metadata.name, labels: { ...MANAGED_BY } },
      spec: {
        // Injected pods only: pods without a sidecar are none of Sluice's business.
        podSelector: { matchExpressions: [{ key: PROXY_LABEL, operator: 'Exists' }] },
        policyTypes: ['Ingress'],
        // From anywhere, but only to these ports: the app's own port is reachable from the pod itself (the sidecar) and nowhere else.
        ingress: [{ ports: ports.map((port) => ({ protocol: 'TCP', port })) }],
      },
    },
  };
}
