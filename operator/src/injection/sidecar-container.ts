/**
 * The sidecar as it is added to a pod: one native-sidecar init container plus the volumes it
 * mounts. Pure data from the injection config and the per-pod facts the patcher worked out.
 *
 * Why each piece:
 *  - `restartPolicy: Always` on an init container is a native sidecar (Kubernetes ≥ 1.29): it
 *    starts before the app containers, its startup probe gates them, it is restarted on its own,
 *    and it does not keep Jobs from completing.
 *  - the restricted security context passes the `restricted` Pod Security Standard, so the
 *    sidecar can be injected into namespaces that enforce it; it needs no privileges because
 *    traffic arrives by port-name takeover, not iptables.
 *  - the projected token has its own audience and a short life, and is mounted even when the pod
 *    turns off `automountServiceAccountToken`: it proves the pod's identity to the operator's
 *    discovery stream (TokenReview) and is worthless to the API server for anything else.
 *  - the operator's CA bundle is an env var (SLUICE_OPERATOR_CA, PEM inline),
 *    not a mounted ConfigMap: writing a ConfigMap into every injected namespace would need
 *    cluster-wide ConfigMap write RBAC. The price: the value is fixed at pod creation, so a pod
 *    created before a CA rotation (every ~3.3 years: 2/3 of a 5-year CA) cannot verify the new
 *    CA's certificates after its stream breaks until it is restarted. Not a secret (a CA cert).
 *  - labels come through a downward-API *volume* because env vars can carry single labels only,
 *    and the file follows label changes (the operator's leader label, for one).
 */
import { SIDECAR_CONTAINER_NAME } from './annotations.ts';
import type { InjectionConfig } from './injection-config.ts';
import { parseQuantity, type ResourceName } from './quantity.ts';
import { nodeOptionsFor, v8HeapSettings } from './v8-heap.ts';

export const SIDECAR_PORTS = { admin: 15000, localApi: 15020, http: 15080, grpc: 15081 } as const;
export const RUN_AS_USER = 65532;

export const VOLUMES = { token: 'sluice-token', podinfo: 'sluice-podinfo', tmp: 'sluice-tmp' } as const;
export const TOKEN_DIR = '/var/run/secrets/sluice.dev/token';
export const TOKEN_FILE = `${TOKEN_DIR}/token`;
export const PODINFO_DIR = '/etc/sluice/podinfo';

export interface SidecarFacts {
  /** App ports found by port-name takeover; each taken-over name becomes the sidecar's port name. */
  appPorts: { http?: number; grpc?: number };
  resources: { requests: Partial<Record<ResourceName, string>>; limits: Partial<Record<ResourceName, string>> };
  /** The CA bundle the sidecar verifies the operator with (see the header). */
  operatorCaPem?: string;
}

/** The memory limit in bytes (already validated by the patcher), or undefined without one. */
function memoryLimitOf(facts: SidecarFacts): number | undefined {
  const limit = facts.resources.limits.memory;
  return limit === undefined ? undefined : parseQuantity(limit);
}

const fieldEnv = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } } });

export function sidecarContainer(cfg: InjectionConfig, facts: SidecarFacts): Record<string, unknown> {
  const env: Record<string, unknown>[] = [
    { name: 'SLUICE_OPERATOR', value: cfg.operatorAddress },
    // Right after the address it belongs to; plaintext discovery when absent.
    ...(facts.operatorCaPem ? [{ name: 'SLUICE_OPERATOR_CA', value: facts.operatorCaPem }] : []),
    // The pod name is the sidecar's identity in Redis (queue consumer, lock holder) and to the operator.
    fieldEnv('SLUICE_ID', 'metadata.name'),
    fieldEnv('SLUICE_POD_NAME', 'metadata.name'),
    fieldEnv('SLUICE_POD_NAMESPACE', 'metadata.namespace'),
    fieldEnv('SLUICE_POD_UID', 'metadata.uid'),
    fieldEnv('SLUICE_POD_IP', 'status.podIP'),
    fieldEnv('SLUICE_NODE_NAME', 'spec.nodeName'),
    { name: 'SLUICE_TOKEN_FILE', value: TOKEN_FILE },
    { name: 'SLUICE_LABELS_FILE', value: `${PODINFO_DIR}/labels` },
    { name: 'SLUICE_LISTEN_HTTP', value: `:${SIDECAR_PORTS.http}` },
    { name: 'SLUICE_LISTEN_GRPC', value: `:${SIDECAR_PORTS.grpc}` },
    { name: 'SLUICE_ADMIN', value: `:${SIDECAR_PORTS.admin}` },
    { name: 'SLUICE_LOCAL_API', value: `127.0.0.1:${SIDECAR_PORTS.localApi}` },
    { name: 'SLUICE_LOG_LEVEL', value: cfg.logLevel },
    // V8's heap from this container's memory limit (v8-heap.ts): set here, per pod, not in the image.
    { name: 'NODE_OPTIONS', value: nodeOptionsFor(v8HeapSettings(memoryLimitOf(facts))) },
  ];
  if (facts.appPorts.http !== undefined) env.push({ name: 'SLUICE_APP_HTTP', value: `127.0.0.1:${facts.appPorts.http}` });
  if (facts.appPorts.grpc !== undefined) env.push({ name: 'SLUICE_APP_GRPC', value: `127.0.0.1:${facts.appPorts.grpc}` });
  if (cfg.redisUrl) env.push({ name: 'SLUICE_REDIS', value: cfg.redisUrl });
  if (cfg.redisUrlSecret) env.push({ name: 'SLUICE_REDIS', valueFrom: { secretKeyRef: { name: cfg.redisUrlSecret.name, key: cfg.redisUrlSecret.key } } });
  if (cfg.redisSentinelPasswordSecret) {
    const ref = cfg.redisSentinelPasswordSecret;
    env.push({ name: 'SLUICE_REDIS_SENTINEL_PASSWORD', valueFrom: { secretKeyRef: { name: ref.name, key: ref.key } } });
  }
  if (cfg.lockNodes.length > 0) env.push({ name: 'SLUICE_LOCK_NODES', value: cfg.lockNodes.join(',') });
  if (cfg.lockNodesSecret) env.push({ name: 'SLUICE_LOCK_NODES', valueFrom: { secretKeyRef: { name: cfg.lockNodesSecret.name, key: cfg.lockNodesSecret.key } } });

  const resources: Record<string, Record<string, string>> = {};
  if (Object.keys(facts.resources.requests).length) resources.requests = { ...facts.resources.requests };
  if (Object.keys(facts.resources.limits).length) resources.limits = { ...facts.resources.limits };

  const admin = (path: string) => ({ httpGet: { path, port: SIDECAR_PORTS.admin, scheme: 'HTTP' } });
  return {
    name: SIDECAR_CONTAINER_NAME,
    image: cfg.image,
    imagePullPolicy: cfg.imagePullPolicy,
    restartPolicy: 'Always',
    env,
    ports: [
      // A taken-over name goes to the sidecar; otherwise the listener keeps a name of its own.
      { name: facts.appPorts.http !== undefined ? 'http' : 'sluice-http', containerPort: SIDECAR_PORTS.http, protocol: 'TCP' },
      { name: facts.appPorts.grpc !== undefined ? 'grpc' : 'sluice-grpc', containerPort: SIDECAR_PORTS.grpc, protocol: 'TCP' },
      { name: 'sluice-admin', containerPort: SIDECAR_PORTS.admin, protocol: 'TCP' },
    ],
    // The app containers start only once this passes: the proxy is listening before traffic can come.
    startupProbe: { ...admin('/healthz'), periodSeconds: 1, failureThreshold: 60, timeoutSeconds: 2 },
    livenessProbe: { ...admin('/healthz'), periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 2 },
    readinessProbe: { ...admin('/readyz'), periodSeconds: 5, failureThreshold: 3, timeoutSeconds: 2 },
    resources,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUN_AS_USER,
      runAsGroup: RUN_AS_USER,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [
      { name: VOLUMES.token, mountPath: TOKEN_DIR, readOnly: true },
      { name: VOLUMES.podinfo, mountPath: PODINFO_DIR, readOnly: true },
      // The root filesystem is read-only; the one writable place is a small in-memory /tmp.
      { name: VOLUMES.tmp, mountPath: '/tmp' },
    ],
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

export function sidecarVolumes(cfg: InjectionConfig): Record<string, unknown>[] {
  return [
    {
      name: VOLUMES.token,
      projected: {
        sources: [{ serviceAccountToken: { audience: cfg.tokenAudience, expirationSeconds: cfg.tokenExpirationSeconds, path: 'token' } }],
      },
    },
    {
      name: VOLUMES.podinfo,
      downwardAPI: {
        items: [
          { path: 'labels', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.labels' } },
          { path: 'annotations', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.annotations' } },
        ],
      },
    },
    { name: VOLUMES.tmp, emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
  ];
}
