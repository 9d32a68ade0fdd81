/**
 * The built-in resources the operator, kubectl and helm use, with the server-side behaviour that
 * matters to them: pod/service/deployment defaulting, namespace bookkeeping, Secret `stringData`,
 * deployment selector checks, and the core ↔ events.k8s.io Event conversion (one bucket, two
 * shapes, as in the real server).
 */
import { badRequest, fieldInvalid, fieldRequired, type FieldError } from './errors.ts';
import { ALL_VERBS, type KubeObject, type Obj, type ResourceType, type ScaleSubresource } from './resources.ts';
import { labelSelectorRequirements, matchesLabels } from './selectors.ts';

interface Options {
  namespaced?: boolean;
  shortNames?: string[];
  categories?: string[];
  status?: boolean;
  scale?: ScaleSubresource;
  generation?: boolean;
  verbs?: string[];
  singular?: string;
  storageKey?: string;
  extra?: Partial<ResourceType>;
  fieldLabels?: string[];
}

function builtin(group: string, version: string, kind: string, plural: string, o: Options = {}): ResourceType {
  return {
    group, version, kind, plural,
    listKind: `${kind}List`,
    singular: o.singular ?? kind.toLowerCase(),
    namespaced: o.namespaced ?? true,
    shortNames: o.shortNames ?? [],
    categories: o.categories ?? [],
    verbs: o.verbs ?? ALL_VERBS,
    storageKey: o.storageKey ?? `${group}/${plural}`,
    status: o.status ?? false,
    ...(o.scale ? { scale: o.scale } : {}),
    generation: o.generation ?? false,
    requireResourceVersionOnUpdate: false,
    ...(o.fieldLabels ? { fieldLabels: o.fieldLabels } : {}),
    ...o.extra,
  };
}

const REPLICAS_SCALE: ScaleSubresource = { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' };
const WORKLOAD = { status: true, generation: true, categories: ['all'] };

let nextClusterIp = 1;
function allocateClusterIp(): string {
  const n = nextClusterIp++;
  return `10.96.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`;
}

function defaultPodSpec(spec: Obj | undefined): void {
  if (!spec) return;
  spec.restartPolicy ??= 'Always';
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.securityContext ??= {};
  spec.serviceAccountName ??= (spec.serviceAccount as string | undefined) ?? 'default';
  spec.serviceAccount ??= spec.serviceAccountName;
  for (const list of ['initContainers', 'containers'] as const) {
    for (const c of (spec[list] as Obj[] | undefined) ?? []) {
      c.terminationMessagePath ??= '/dev/termination-log';
      c.terminationMessagePolicy ??= 'File';
      const image = String(c.image ?? '');
      c.imagePullPolicy ??= image.includes('@') || (/:[^/]+$/.test(image) && !image.endsWith(':latest')) ? 'IfNotPresent' : 'Always';
      c.resources ??= {};
      for (const p of (c.ports as Obj[] | undefined) ?? []) p.protocol ??= 'TCP';
    }
  }
}

function validatePodSpec(spec: Obj | undefined, path: string): FieldError[] {
  const errors: FieldError[] = [];
  if (!spec) return [fieldRequired(path)];
  const containers = spec.containers as Obj[] | undefined;
  if (!Array.isArray(containers) || containers.length === 0) errors.push(fieldRequired(`${path}.containers`));
  const names = new Set<string>();
  for (const list of ['initContainers', 'containers'] as const) {
    ((spec[list] as Obj[] | undefined) ?? []).forEach((c, i) => {
      const p = `${path}.${list}[${i}]`;
      if (!c.name) errors.push(fieldRequired(`${p}.name`));
      else if (names.has(String(c.name))) errors.push({ field: `${p}.name`, reason: 'FieldValueDuplicate', detail: `Duplicate value: "${String(c.name)}"` });
      else names.add(String(c.name));
      if (!c.image && list === 'containers') errors.push(fieldRequired(`${p}.image`));
    });
  }
  return errors;
}

function eventToV1(e: KubeObject): KubeObject {
  // events.k8s.io/v1 → core/v1, the storage shape.
  const { regarding, note, deprecatedSource, deprecatedFirstTimestamp, deprecatedLastTimestamp, deprecatedCount, reportingController, ...rest } = e as Obj;
  const out: Obj = { ...rest, apiVersion: 'v1', kind: 'Event' };
  if (regarding !== undefined) out.involvedObject = regarding;
  if (note !== undefined) out.message = note;
  if (deprecatedSource !== undefined) out.source = deprecatedSource;
  if (deprecatedFirstTimestamp !== undefined) out.firstTimestamp = deprecatedFirstTimestamp;
  if (deprecatedLastTimestamp !== undefined) out.lastTimestamp = deprecatedLastTimestamp;
  if (deprecatedCount !== undefined) out.count = deprecatedCount;
  if (reportingController !== undefined) out.reportingComponent = reportingController;
  out.involvedObject ??= {};
  return out as KubeObject;
}

function eventFromV1(e: KubeObject): KubeObject {
  const { involvedObject, message, source, firstTimestamp, lastTimestamp, count, reportingComponent, ...rest } = e as Obj;
  const out: Obj = { ...rest, apiVersion: 'events.k8s.io/v1', kind: 'Event' };
  if (involvedObject !== undefined) out.regarding = involvedObject;
  if (message !== undefined) out.note = message;
  if (source !== undefined) out.deprecatedSource = source;
  if (firstTimestamp !== undefined) out.deprecatedFirstTimestamp = firstTimestamp;
  if (lastTimestamp !== undefined) out.deprecatedLastTimestamp = lastTimestamp;
  if (count !== undefined) out.deprecatedCount = count;
  if (reportingComponent !== undefined) out.reportingController = reportingComponent;
  return out as KubeObject;
}

export function builtinResources(): ResourceType[] {
  return [
    builtin('', 'v1', 'Namespace', 'namespaces', {
      namespaced: false, shortNames: ['ns'], status: true, fieldLabels: ['status.phase'],
      extra: {
        prepareCreate(o) {
          // The real server labels every namespace with its name, which namespaceSelectors rely on.
          o.metadata.labels = { ...o.metadata.labels, 'kubernetes.io/metadata.name': o.metadata.name as string };
          o.spec = { finalizers: ['kubernetes'] };
          o.status = { phase: 'Active' };
        },
        prepareUpdate(o) {
          o.metadata.labels = { ...o.metadata.labels, 'kubernetes.io/metadata.name': o.metadata.name as string };
        },
      },
    }),
    builtin('', 'v1', 'Pod', 'pods', {
      shortNames: ['po'], categories: ['all'], status: true,
      fieldLabels: ['spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'spec.hostNetwork', 'status.phase', 'status.podIP', 'status.nominatedNodeName'],
      extra: {
        prepareCreate(o) {
          defaultPodSpec(o.spec as Obj | undefined);
          o.status = { phase: 'Pending', qosClass: 'BestEffort' };
        },
        validate: (o, old) => [...validatePodSpec(o.spec as Obj | undefined, 'spec'), ...podUpdateRules(o, old)],
      },
    }),
    builtin('', 'v1', 'Service', 'services', {
      shortNames: ['svc'], categories: ['all'], status: true,
      extra: {
        prepareCreate(o) {
          const spec = (o.spec ??= {}) as Obj;
          spec.type ??= 'ClusterIP';
          spec.sessionAffinity ??= 'None';
          if (spec.type !== 'ExternalName') {
            spec.clusterIP ??= allocateClusterIp();
            spec.clusterIPs ??= [spec.clusterIP];
            spec.ipFamilies ??= ['IPv4'];
            spec.ipFamilyPolicy ??= 'SingleStack';
            spec.internalTrafficPolicy ??= 'Cluster';
          }
          for (const p of (spec.ports as Obj[] | undefined) ?? []) {
            p.protocol ??= 'TCP';
            p.targetPort ??= p.port;
          }
          o.status = { loadBalancer: {} };
        },
        prepareUpdate(o, old) {
          const spec = (o.spec ??= {}) as Obj;
          const oldSpec = (old.spec ?? {}) as Obj;
          // clusterIP is immutable; an update that omits it keeps the allocated one.
          if (spec.clusterIP === undefined || spec.clusterIP === '') spec.clusterIP = oldSpec.clusterIP;
          spec.clusterIPs ??= oldSpec.clusterIPs;
          for (const p of (spec.ports as Obj[] | undefined) ?? []) {
            p.protocol ??= 'TCP';
            p.targetPort ??= p.port;
          }
        },
      },
    }),
    builtin('', 'v1', 'ServiceAccount', 'serviceaccounts', { shortNames: ['sa'] }),
    builtin('', 'v1', 'ConfigMap', 'configmaps', { shortNames: ['cm'] }),
    builtin('', 'v1', 'Secret', 'secrets', {
      fieldLabels: ['type'],
      extra: {
        prepareCreate: secretStringData,
        prepareUpdate: (o) => secretStringData(o),
      },
    }),
    builtin('', 'v1', 'Event', 'events', {
      shortNames: ['ev'], storageKey: 'events',
      fieldLabels: ['involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name', 'involvedObject.uid', 'involvedObject.apiVersion', 'involvedObject.resourceVersion', 'involvedObject.fieldPath', 'reason', 'reportingComponent', 'source', 'type'],
      extra: { prepareCreate: (o) => eventMicroTimes(o, 'v1'), prepareUpdate: (o) => eventMicroTimes(o, 'v1') },
    }),
    builtin('', 'v1', 'Endpoints', 'endpoints', { shortNames: ['ep'], singular: 'endpoints' }),
    builtin('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices'),
    builtin('', 'v1', 'Node', 'nodes', { namespaced: false, shortNames: ['no'], status: true, fieldLabels: ['spec.unschedulable'] }),
    builtin('', 'v1', 'PersistentVolumeClaim', 'persistentvolumeclaims', { shortNames: ['pvc'], status: true }),
    builtin('apps', 'v1', 'Deployment', 'deployments', {
      ...WORKLOAD, shortNames: ['deploy'], scale: REPLICAS_SCALE,
      extra: {
        prepareCreate(o) {
          const spec = (o.spec ??= {}) as Obj;
          spec.replicas ??= 1;
          spec.revisionHistoryLimit ??= 10;
          spec.progressDeadlineSeconds ??= 600;
          spec.strategy ??= { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } };
          defaultPodSpec(((spec.template ?? {}) as Obj).spec as Obj | undefined);
          o.status = {};
        },
        prepareUpdate(o) {
          const spec = (o.spec ??= {}) as Obj;
          spec.replicas ??= 1;
          defaultPodSpec(((spec.template ?? {}) as Obj).spec as Obj | undefined);
        },
        validate: validateWorkload,
      },
    }),
    builtin('apps', 'v1', 'ReplicaSet', 'replicasets', { ...WORKLOAD, fieldLabels: ['status.replicas'], shortNames: ['rs'], scale: REPLICAS_SCALE, extra: { validate: validateWorkload } }),
    builtin('apps', 'v1', 'StatefulSet', 'statefulsets', { ...WORKLOAD, shortNames: ['sts'], scale: REPLICAS_SCALE, extra: { validate: validateWorkload } }),
    builtin('apps', 'v1', 'DaemonSet', 'daemonsets', { ...WORKLOAD, shortNames: ['ds'], extra: { validate: validateWorkload } }),
    builtin('batch', 'v1', 'Job', 'jobs', { fieldLabels: ['status.successful'], status: true, generation: true, categories: ['all'] }),
    builtin('batch', 'v1', 'CronJob', 'cronjobs', { status: true, generation: true, shortNames: ['cj'], categories: ['all'] }),
    builtin('autoscaling', 'v2', 'HorizontalPodAutoscaler', 'horizontalpodautoscalers', { status: true, generation: true, shortNames: ['hpa'], categories: ['all'] }),
    builtin('coordination.k8s.io', 'v1', 'Lease', 'leases', {
      extra: {
        prepareCreate: (o) => microTimes(o, 'Lease', 'coordination.k8s.io/v1', [['spec', 'acquireTime'], ['spec', 'renewTime']]),
        prepareUpdate: (o) => microTimes(o, 'Lease', 'coordination.k8s.io/v1', [['spec', 'acquireTime'], ['spec', 'renewTime']]),
      },
    }),
    builtin('events.k8s.io', 'v1', 'Event', 'events', {
      shortNames: ['ev'], storageKey: 'events',
      fieldLabels: ['regarding.kind', 'regarding.namespace', 'regarding.name', 'regarding.uid', 'regarding.apiVersion', 'regarding.resourceVersion', 'regarding.fieldPath', 'reason', 'reportingController', 'type'],
      extra: {
        fromStorage: eventFromV1, toStorage: eventToV1,
        prepareCreate: (o) => eventMicroTimes(o, 'events.k8s.io/v1'), prepareUpdate: (o) => eventMicroTimes(o, 'events.k8s.io/v1'),
      },
    }),
    builtin('admissionregistration.k8s.io', 'v1', 'MutatingWebhookConfiguration', 'mutatingwebhookconfigurations', { namespaced: false, generation: true }),
    builtin('admissionregistration.k8s.io', 'v1', 'ValidatingWebhookConfiguration', 'validatingwebhookconfigurations', { namespaced: false, generation: true }),
    builtin('rbac.authorization.k8s.io', 'v1', 'Role', 'roles'),
    builtin('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings'),
    builtin('rbac.authorization.k8s.io', 'v1', 'ClusterRole', 'clusterroles', { namespaced: false }),
    builtin('rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', 'clusterrolebindings', { namespaced: false }),
    builtin('policy', 'v1', 'PodDisruptionBudget', 'poddisruptionbudgets', { shortNames: ['pdb'], status: true, generation: true }),
    builtin('networking.k8s.io', 'v1', 'NetworkPolicy', 'networkpolicies', { shortNames: ['netpol'], generation: true }),
    builtin('networking.k8s.io', 'v1', 'Ingress', 'ingresses', { shortNames: ['ing'], status: true, generation: true }),
    builtin('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions', {
      namespaced: false, shortNames: ['crd', 'crds'], status: true, generation: true,
    }),
  ];
}

const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$/;

/**
 * metav1.MicroTime fields must carry exactly six fractional digits: the real apiserver's decoder
 * refuses JavaScript's default millisecond ISO strings (client-node's V1MicroTime formats them
 * right), and a test server that accepted them would hide that bug until the first real cluster.
 */
function microTimes(o: KubeObject, kind: string, apiVersion: string, paths: string[][]): void {
  for (const path of paths) {
    let v: unknown = o;
    for (const p of path) v = typeof v === 'object' && v !== null ? (v as Obj)[p] : undefined;
    if (v === undefined || v === null || (typeof v === 'string' && MICRO_TIME.test(v))) continue;
    const text = String(v);
    const afterSeconds = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(.*)$/.exec(text)?.[1] ?? text;
    throw badRequest(`${kind} in version "${apiVersion.split('/').pop()}" cannot be handled as a ${kind}: parsing time "${text}" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "${afterSeconds}" as ".000000"`);
  }
}

function eventMicroTimes(o: KubeObject, apiVersion: string): void {
  microTimes(o, 'Event', apiVersion, [['eventTime'], ['series', 'lastObservedTime']]);
}

function secretStringData(o: KubeObject): void {
  // The apiserver folds stringData into data (base64) and never stores stringData.
  const sd = o.stringData as Record<string, string> | undefined;
  if (sd) {
    const data = ((o.data ??= {}) as Record<string, string>);
    for (const [k, v] of Object.entries(sd)) data[k] = Buffer.from(String(v)).toString('base64');
    delete o.stringData;
  }
  o.type ??= 'Opaque';
}

/** A pod's spec is immutable but for images, activeDeadlineSeconds, tolerations and grace period. */
function podUpdateRules(o: KubeObject, old: KubeObject | undefined): FieldError[] {
  if (!old) return [];
  const mutable = (spec: unknown) => {
    const s = structuredClone((spec ?? {}) as Obj);
    for (const list of ['containers', 'initContainers', 'ephemeralContainers']) {
      for (const c of (s[list] as Obj[] | undefined) ?? []) delete c.image;
    }
    delete s.activeDeadlineSeconds;
    delete s.tolerations;
    delete s.terminationGracePeriodSeconds;
    return JSON.stringify(s);
  };
  if (mutable(o.spec) === mutable(old.spec)) return [];
  return [{
    field: 'spec', reason: 'FieldValueForbidden',
    detail: 'Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
  }];
}

function validateWorkload(o: KubeObject): FieldError[] {
  const spec = (o.spec ?? {}) as Obj;
  const errors: FieldError[] = [];
  if (!spec.selector) return [fieldRequired('spec.selector')];
  const template = (spec.template ?? {}) as Obj;
  const labels = ((template.metadata ?? {}) as Obj).labels as Record<string, string> | undefined;
  const reqs = labelSelectorRequirements(spec.selector) ?? [];
  if (reqs.length === 0) errors.push(fieldInvalid('spec.selector', 'object', 'empty selector is invalid for deployment'));
  else if (!matchesLabels(reqs, labels)) {
    errors.push(fieldInvalid('spec.template.metadata.labels', JSON.stringify(labels ?? {}), '`selector` does not match template `labels`'));
  }
  errors.push(...validatePodSpec(template.spec as Obj | undefined, 'spec.template.spec'));
  if (typeof spec.replicas === 'number' && spec.replicas < 0) errors.push(fieldInvalid('spec.replicas', spec.replicas, 'must be greater than or equal to 0'));
  return errors;
}
