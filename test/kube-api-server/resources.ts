/**
 * What the server knows about each resource: names (for URLs, discovery and kubectl's short
 * names), scope, verbs, subresources, and the per-type behaviour hooks (defaulting, validation).
 * Built-ins are declared in builtins.ts; custom resources are added at runtime from CRDs.
 */
import type { FieldError } from './errors.ts';
import type { CompiledSchema, JSONSchemaProps } from './openapi-validate.ts';

export type Obj = Record<string, unknown>;
export type KubeObject = Obj & { apiVersion?: string; kind?: string; metadata: Meta };
export interface Meta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[];
  managedFields?: unknown;
  [k: string]: unknown;
}

export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
  format?: string;
  priority?: number;
}

export interface ScaleSubresource {
  specReplicasPath: string;
  statusReplicasPath: string;
  labelSelectorPath?: string;
}

export interface ResourceType {
  group: string;
  version: string;
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  verbs: string[];
  /** Objects of these types live in the same bucket (core and events.k8s.io Events). */
  storageKey: string;
  status: boolean;
  scale?: ScaleSubresource;
  /** metadata.generation is tracked, and bumped when anything but metadata/status changes. */
  generation: boolean;
  /** PUT without metadata.resourceVersion is refused (custom resources), not last-write-wins. */
  requireResourceVersionOnUpdate: boolean;
  /** Only POST, answered without storing (TokenReview, SubjectAccessReview). */
  virtual?: (obj: KubeObject, user: { username: string; uid?: string; groups: string[] }) => KubeObject;
  schema?: CompiledSchema;
  rawSchema?: JSONSchemaProps;
  printerColumns?: PrinterColumn[];
  /** Field selector labels this type supports besides metadata.name/namespace (others are 400). */
  fieldLabels?: string[];
  /** Name of the CRD that defined this type. */
  crd?: string;
  /** Converts a stored object into this type's shape (and back), for shared buckets. */
  fromStorage?: (obj: KubeObject) => KubeObject;
  toStorage?: (obj: KubeObject) => KubeObject;
  /** Fills defaults and server-set fields on create (status, clusterIP, ...). */
  prepareCreate?: (obj: KubeObject) => void;
  prepareUpdate?: (obj: KubeObject, old: KubeObject) => void;
  validate?: (obj: KubeObject, old: KubeObject | undefined) => FieldError[];
}

export const apiVersionOf = (rt: { group: string; version: string }) => (rt.group ? `${rt.group}/${rt.version}` : rt.version);

export const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

/** The set of served resource types, changing as CRDs come and go. */
export class ResourceRegistry {
  private readonly types: ResourceType[] = [];
  private readonly listeners = new Set<() => void>();

  add(rt: ResourceType): void {
    this.remove(rt.group, rt.version, rt.plural);
    this.types.push(rt);
    this.changed();
  }

  remove(group: string, version: string, plural: string): void {
    const i = this.types.findIndex((t) => t.group === group && t.version === version && t.plural === plural);
    if (i >= 0) {
      this.types.splice(i, 1);
      this.changed();
    }
  }

  removeCrd(crdName: string): void {
    for (let i = this.types.length - 1; i >= 0; i--) if (this.types[i]?.crd === crdName) this.types.splice(i, 1);
    this.changed();
  }

  find(group: string, version: string, plural: string): ResourceType | undefined {
    return this.types.find((t) => t.group === group && t.version === version && t.plural === plural);
  }

  byKind(apiVersion: string, kind: string): ResourceType | undefined {
    return this.types.find((t) => apiVersionOf(t) === apiVersion && t.kind === kind);
  }

  all(): readonly ResourceType[] {
    return this.types;
  }

  /** Group → versions, in the order the groups were first registered (core first). */
  groups(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const t of this.types) {
      const versions = out.get(t.group) ?? [];
      if (!versions.includes(t.version)) versions.push(t.version);
      out.set(t.group, versions);
    }
    return out;
  }

  onChange(fn: () => void): void {
    this.listeners.add(fn);
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }
}
