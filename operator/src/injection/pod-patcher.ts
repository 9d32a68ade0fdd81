/**
 * The injector's decision for one pod: skip it, refuse it (with a message for the person who
 * created it), or the RFC 6902 JSON Patch that adds the sidecar. Pure: everything it needs is in
 * its input (gathered by admission-review.ts), so the table tests cover every case without a
 * server.
 *
 * The order of the checks is the order of precedence: an already-injected pod is never touched
 * (idempotence, and webhook reinvocation); an explicit opt-out beats a namespace opt-in; only then
 * are the pod's own values validated, so a pod that is not injected is never refused over them.
 */
import {
  INJECT_ANNOTATION, INJECTED_ANNOTATION, PROXY_LABEL, PROXY_LABEL_VALUE, RESOURCE_ANNOTATIONS, SIDECAR_CONTAINER_NAME,
} from './annotations.ts';
import type { InjectionConfig } from './injection-config.ts';
import { pointerToken, type JsonPatchOp } from './json-patch.ts';
import { planPortTakeover, PortTakeoverError, type AppContainer } from './port-takeover.ts';
import { QuantityError, parseQuantity, validateQuantity, type ResourceName } from './quantity.ts';
import { sidecarCpu, type NamespaceCpuRules } from './namespace-cpu-rules.ts';
import { SIDECAR_PORTS, sidecarContainer, sidecarVolumes, VOLUMES } from './sidecar-container.ts';

export interface PodLike {
  metadata?: { name?: string; generateName?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: {
    containers?: (AppContainer & { name?: string })[];
    initContainers?: { name?: string; ports?: { name?: string }[]; env?: unknown[] }[];
    volumes?: { name?: string }[];
    hostNetwork?: boolean;
  };
}

export interface PatcherInput {
  pod: PodLike;
  /** The apiserver called the namespace-scoped webhook: the pod's namespace has opted in. */
  namespaceOptedIn: boolean;
  config: InjectionConfig;
  /**
   * The operator's CA bundle (PEM) at admission time: the sidecar gets it as
   * SLUICE_OPERATOR_CA and speaks TLS only. Absent: the operator serves discovery in plaintext.
   */
  operatorCaPem?: string;
  /** The namespace's CPU rules (ResourceQuota, LimitRange); absent: none known. */
  namespaceCpu?: NamespaceCpuRules;
}

export type SkipReason = 'AlreadyInjected' | 'OptedOut' | 'NotOptedIn' | 'HostNetwork';
export type DenyCode = 'SLUICE_ERR_INVALID_ANNOTATION' | 'SLUICE_ERR_PORT_TAKEOVER' | 'SLUICE_ERR_PORT_CONFLICT' | 'SLUICE_ERR_NAME_CONFLICT';

export type InjectionDecision =
  | { action: 'skip'; reason: SkipReason }
  | { action: 'deny'; code: DenyCode; message: string }
  | { action: 'patch'; patch: JsonPatchOp[] };

const deny = (code: DenyCode, message: string): InjectionDecision => ({ action: 'deny', code, message });

export function planInjection({ pod, namespaceOptedIn, config, operatorCaPem, namespaceCpu }: PatcherInput): InjectionDecision {
  const spec = pod.spec ?? {};
  const annotations = pod.metadata?.annotations ?? {};
  const containers = spec.containers ?? [];
  const initContainers = spec.initContainers ?? [];

  if ([...initContainers, ...containers].some((c) => c.name === SIDECAR_CONTAINER_NAME)) {
    const late = planLateTakeover(pod);
    return late.length > 0 ? { action: 'patch', patch: late } : { action: 'skip', reason: 'AlreadyInjected' };
  }

  const inject = annotations[INJECT_ANNOTATION];
  if (inject !== undefined && inject !== 'true' && inject !== 'false') {
    return deny('SLUICE_ERR_INVALID_ANNOTATION', `annotation ${INJECT_ANNOTATION}: ${JSON.stringify(inject.slice(0, 40))} must be "true" or "false"`);
  }
  if (inject === 'false') return { action: 'skip', reason: 'OptedOut' };
  if (!namespaceOptedIn && inject !== 'true') return { action: 'skip', reason: 'NotOptedIn' };
  // Host-network pods share the node's ports: a second injected pod on the node could not bind 15080.
  if (spec.hostNetwork) return { action: 'skip', reason: 'HostNetwork' };

  let resources: ReturnType<typeof resolveResources>;
  try {
    resources = resolveResources(config, annotations, namespaceCpu);
  } catch (err) {
    if (err instanceof QuantityError) return deny('SLUICE_ERR_INVALID_ANNOTATION', err.message);
    throw err;
  }

  const reserved = new Set<number>(Object.values(SIDECAR_PORTS));
  for (const c of containers) {
    for (const p of c.ports ?? []) {
      if (p.containerPort !== undefined && reserved.has(p.containerPort)) {
        return deny('SLUICE_ERR_PORT_CONFLICT', `container "${c.name}" declares port ${p.containerPort}, which the sidecar uses (${[...reserved].join(', ')}); move the app's port or opt the pod out with ${INJECT_ANNOTATION}: "false"`);
      }
    }
  }
  const ours = new Set<string>(Object.values(VOLUMES));
  const clash = (spec.volumes ?? []).find((v) => v.name !== undefined && ours.has(v.name));
  if (clash) return deny('SLUICE_ERR_NAME_CONFLICT', `the pod already has a volume named "${clash.name}", which the sidecar needs`);

  let takeover: ReturnType<typeof planPortTakeover>;
  try {
    takeover = planPortTakeover(containers);
  } catch (err) {
    if (err instanceof PortTakeoverError) return deny('SLUICE_ERR_PORT_TAKEOVER', err.message);
    throw err;
  }

  const patch: JsonPatchOp[] = [];
  const sidecar = sidecarContainer(config, { appPorts: takeover.appPorts, resources, ...(operatorCaPem ? { operatorCaPem } : {}) });
  // First in the list, so it starts before other init containers and can serve their traffic too.
  if (spec.initContainers === undefined) patch.push({ op: 'add', path: '/spec/initContainers', value: [sidecar] });
  else patch.push({ op: 'add', path: '/spec/initContainers/0', value: sidecar });
  if (spec.volumes === undefined) patch.push({ op: 'add', path: '/spec/volumes', value: sidecarVolumes(config) });
  else for (const v of sidecarVolumes(config)) patch.push({ op: 'add', path: '/spec/volumes/-', value: v });
  patch.push(...takeover.ops);
  if (pod.metadata?.annotations === undefined) patch.push({ op: 'add', path: '/metadata/annotations', value: { [INJECTED_ANNOTATION]: config.image } });
  else patch.push({ op: 'add', path: `/metadata/annotations/${pointerToken(INJECTED_ANNOTATION)}`, value: config.image });
  if (pod.metadata?.labels === undefined) patch.push({ op: 'add', path: '/metadata/labels', value: { [PROXY_LABEL]: PROXY_LABEL_VALUE } });
  else patch.push({ op: 'add', path: `/metadata/labels/${pointerToken(PROXY_LABEL)}`, value: PROXY_LABEL_VALUE });
  return { action: 'patch', patch };
}

/**
 * On reinvocation (reinvocationPolicy: IfNeeded), after a later webhook changed an injected pod:
 * an app port named `http` or `grpc` that the sidecar did not take over at injection (its own
 * port is still `sluice-http` / `sluice-grpc`) was added by that webhook. Take it over now, as
 * at injection: rename the app's port, give the sidecar the name, and point the sidecar at the
 * app's port. Anything else — nothing new, or names that cannot be taken over — changes nothing:
 * the pod was admitted once already and must not be refused over another injector's ports.
 */
function planLateTakeover(pod: PodLike): JsonPatchOp[] {
  const spec = pod.spec ?? {};
  const si = (spec.initContainers ?? []).findIndex((c) => c.name === SIDECAR_CONTAINER_NAME);
  const sidecar = spec.initContainers?.[si];
  if (!sidecar) return [];
  let takeover: ReturnType<typeof planPortTakeover>;
  try {
    takeover = planPortTakeover(spec.containers ?? []);
  } catch (err) {
    if (err instanceof PortTakeoverError) return [];
    throw err;
  }
  const names = Object.keys(takeover.appPorts) as (keyof typeof takeover.appPorts)[];
  if (names.length === 0) return [];
  const ops: JsonPatchOp[] = [...takeover.ops];
  let hasEnv = sidecar.env !== undefined;
  for (const name of names) {
    const pi = (sidecar.ports ?? []).findIndex((p) => p.name === `sluice-${name}`);
    if (pi < 0) return [];
    ops.push({ op: 'replace', path: `/spec/initContainers/${si}/ports/${pi}/name`, value: name });
    const env = { name: name === 'http' ? 'SLUICE_APP_HTTP' : 'SLUICE_APP_GRPC', value: `127.0.0.1:${takeover.appPorts[name]}` };
    ops.push(hasEnv ? { op: 'add', path: `/spec/initContainers/${si}/env/-`, value: env } : { op: 'add', path: `/spec/initContainers/${si}/env`, value: [env] });
    hasEnv = true;
  }
  return ops;
}

/** The chart's resources with the pod's annotations laid over them, each validated. */
function resolveResources(config: InjectionConfig, annotations: Record<string, string>, namespaceCpu: NamespaceCpuRules | undefined) {
  const requests = { ...config.resources.requests };
  const limits = { ...config.resources.limits };
  const apply = (key: string, target: Partial<Record<ResourceName, string>>, res: ResourceName) => {
    const v = annotations[key];
    if (v !== undefined) target[res] = validateQuantity(res, v, `annotation ${key}`);
  };
  apply(RESOURCE_ANNOTATIONS.cpuRequest, requests, 'cpu');
  apply(RESOURCE_ANNOTATIONS.cpuLimit, limits, 'cpu');
  apply(RESOURCE_ANNOTATIONS.memoryRequest, requests, 'memory');
  apply(RESOURCE_ANNOTATIONS.memoryLimit, limits, 'memory');
  if (namespaceCpu) {
    const cpu = sidecarCpu({ request: requests.cpu, limit: limits.cpu }, namespaceCpu, config.cpuLimitWhenRequired);
    if (cpu.request !== undefined) requests.cpu = cpu.request;
    if (cpu.limit !== undefined) limits.cpu = cpu.limit;
  }
  for (const res of ['cpu', 'memory'] as const) {
    const req = requests[res];
    const lim = limits[res];
    if (req !== undefined && lim !== undefined && (parseQuantity(req) as number) > (parseQuantity(lim) as number)) {
      throw new QuantityError(`sidecar ${res} request ${req} is above its limit ${lim} (check the ${res === 'cpu' ? RESOURCE_ANNOTATIONS.cpuRequest : RESOURCE_ANNOTATIONS.memoryRequest} / -limit annotations)`);
    }
  }
  return { requests, limits };
}
