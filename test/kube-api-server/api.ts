/**
 * The verbs — create, get, list, update, patch, delete, deletecollection — with the apiserver's
 * semantics, independent of HTTP: resourceVersion preconditions (409), generation bumped only by
 * spec changes, the status and scale subresources, finalizers and deletionTimestamp, namespace
 * termination, owner-reference garbage collection, CRD schema pruning/defaulting/validation, and
 * mutating admission. http-server.ts maps requests onto these methods; tests may call them too.
 */
import { randomUUID } from 'node:crypto';
import { runMutatingWebhooks, runValidatingWebhooks, type Operation, type ServiceResolver } from './admission.ts';
import { compileCrd, establishedStatus } from './crd.ts';
import {
  alreadyExists, ApiError, badRequest, conflict, fieldInvalid, fieldRequired, gone, invalid, notFound, type FieldError,
} from './errors.ts';
import { jsonPatch, mergePatch, strategicMergePatch } from './patch.ts';
import { apiVersionOf, type KubeObject, type Meta, type Obj, type ResourceRegistry, type ResourceType } from './resources.ts';
import { checkFieldLabels, matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector, labelSelectorRequirements } from './selectors.ts';
import { Store } from './store.ts';
import { parse as parseYaml } from 'yaml';

export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
}

export interface WriteOptions {
  dryRun?: boolean;
  /** Strict | Warn | Ignore, as sent by kubectl (`?fieldValidation=`). */
  fieldValidation?: string;
  user?: UserInfo;
  /** Filled with `unknown field` warnings (fieldValidation=Warn). */
  warnings?: string[];
}

export interface ListOptions {
  labelSelector?: string | null;
  fieldSelector?: string | null;
  limit?: number;
  continue?: string | null;
  resourceVersion?: string | null;
  resourceVersionMatch?: string | null;
}

export interface DeleteOptions extends WriteOptions {
  propagationPolicy?: string;
  preconditions?: { uid?: string; resourceVersion?: string };
  gracePeriodSeconds?: number;
}

export type PatchType = 'json' | 'merge' | 'strategic' | 'apply';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const ADMIN: UserInfo = { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function randomSuffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  let s = '';
  for (let i = 0; i < 5; i++) s += alphabet[Math.floor(Math.random() * alphabet.length)];
  return s;
}

/** Everything except metadata (and status, when it has its own subresource) — what bumps generation. */
function specPart(rt: ResourceType, o: KubeObject): string {
  const { metadata: _m, status, ...rest } = o as Obj;
  return JSON.stringify(rt.status ? rest : { ...rest, status });
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (isObj(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stableJson(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

export class KubeApi {
  readonly store: Store;
  readonly registry: ResourceRegistry;
  /** Maps webhook service references to URLs (tests set it; see KubeApiServer.resolveServices). */
  resolveService: ServiceResolver = () => undefined;
  private readonly terminating = new Set<string>();

  constructor(store: Store, registry: ResourceRegistry) {
    this.store = store;
    this.registry = registry;
  }

  // ----- reads -----

  get(rt: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const o = this.store.get(rt.storageKey, rt.namespaced ? namespace : undefined, name);
    if (!o) throw notFound(rt, name);
    return this.present(rt, o);
  }

  /** Converts a stored object into the shape this type serves. */
  present(rt: ResourceType, o: KubeObject): KubeObject {
    const shaped = rt.fromStorage ? rt.fromStorage(o) : o;
    return { apiVersion: apiVersionOf(rt), kind: rt.kind, ...shaped, metadata: shaped.metadata } as KubeObject;
  }

  list(rt: ResourceType, namespace: string | undefined, opts: ListOptions = {}): { items: KubeObject[]; metadata: Obj } {
    const rv = opts.resourceVersion ? Number(opts.resourceVersion) : undefined;
    // Lists are served from the latest state, like the watch cache serves "not older than"; only an
    // Exact match (or a continue token) against compacted history is 410 Gone.
    if (opts.resourceVersionMatch === 'Exact' && rv !== undefined && rv < this.store.oldestWatchableRv) {
      throw gone(`The resourceVersion for the provided list is too old.`);
    }
    const labels = parseLabelSelector(opts.labelSelector);
    const fields = parseFieldSelector(opts.fieldSelector);
    checkFieldLabels(fields, rt.fieldLabels);
    let items = this.store.list(rt.storageKey, rt.namespaced ? namespace : undefined)
      .map((o) => this.present(rt, o))
      .filter((o) => matchesLabels(labels, o.metadata.labels) && matchesFields(fields, o));
    let start = 0;
    if (opts.continue) {
      let token: { rv: number; start: string };
      try {
        token = JSON.parse(Buffer.from(opts.continue, 'base64url').toString('utf8'));
      } catch {
        throw badRequest('continue key is not valid');
      }
      if (token.rv < this.store.oldestWatchableRv) {
        throw gone('The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
      }
      start = items.findIndex((o) => Store.key(o.metadata.namespace, o.metadata.name as string) >= token.start);
      if (start < 0) start = items.length;
    }
    const metadata: Obj = { resourceVersion: String(this.store.resourceVersion) };
    if (opts.limit && opts.limit > 0 && items.length - start > opts.limit) {
      const next = items[start + opts.limit] as KubeObject;
      metadata.continue = Buffer.from(JSON.stringify({ rv: this.store.resourceVersion, start: Store.key(next.metadata.namespace, next.metadata.name as string) })).toString('base64url');
      metadata.remainingItemCount = items.length - start - opts.limit;
      items = items.slice(start, start + opts.limit);
    } else items = items.slice(start);
    return { items, metadata };
  }

  // ----- writes -----

  async create(rt: ResourceType, namespace: string | undefined, body: unknown, opts: WriteOptions = {}): Promise<KubeObject> {
    if (!isObj(body)) throw badRequest('the body of the request was in an unknown format - accepted media types include: application/json, application/yaml');
    let obj = structuredClone(body) as KubeObject;
    this.checkKind(rt, obj);
    obj.metadata = isObj(obj.metadata) ? (obj.metadata as Meta) : {};
    if (rt.namespaced) {
      if (obj.metadata.namespace && namespace && obj.metadata.namespace !== namespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      obj.metadata.namespace = namespace ?? obj.metadata.namespace;
      if (!obj.metadata.namespace) throw badRequest('an empty namespace may not be set during creation');
      this.requireNamespace(obj.metadata.namespace);
    } else delete obj.metadata.namespace;
    if (rt.virtual) return rt.virtual(obj, opts.user ?? ADMIN);
    if (rt.toStorage) obj = rt.toStorage(obj);
    this.pruneAndDefault(rt, obj, opts);
    obj = await this.admit(rt, 'CREATE', obj, undefined, opts);
    if (rt.schema) this.pruneAndDefault(rt, obj, { ...opts, fieldValidation: 'Ignore' });
    const meta = obj.metadata;
    if (!meta.name && meta.generateName) meta.name = `${meta.generateName}${randomSuffix()}`;
    const name = meta.name;
    for (const k of ['uid', 'resourceVersion', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'managedFields', 'selfLink']) delete meta[k];
    meta.uid = randomUUID();
    meta.creationTimestamp = now();
    if (rt.generation) meta.generation = 1;
    else delete meta.generation;
    // A status subresource means status is only written through /status; custom resources start without one.
    if (rt.status && rt.schema) delete obj.status;
    rt.prepareCreate?.(obj);
    if (rt.plural === 'customresourcedefinitions') obj.status = establishedStatus(obj);
    const errors = [...this.validateMeta(rt, obj), ...this.validateObject(rt, obj, undefined)];
    if (errors.length) throw invalid(rt.kind, rt.group, name ?? '', errors);
    if (this.store.get(rt.storageKey, meta.namespace, name as string)) throw alreadyExists(rt, name as string);
    await this.validateAdmission(rt, 'CREATE', obj, undefined, opts);
    if (opts.dryRun) return this.present(rt, obj);
    const stored = this.store.put(rt.storageKey, obj);
    this.afterWrite(rt, stored);
    return this.present(rt, stored);
  }

  /** PUT: replace the object (or its status / scale), refusing stale resourceVersions. */
  async update(rt: ResourceType, namespace: string | undefined, name: string, body: unknown, subresource: string | undefined, opts: WriteOptions = {}): Promise<KubeObject> {
    if (!isObj(body)) throw badRequest('the body of the request was in an unknown format');
    const current = this.get(rt, namespace, name);
    if (subresource === 'scale') return this.writeScale(rt, current, body, opts);
    const obj = structuredClone(body) as KubeObject;
    this.checkKind(rt, obj);
    obj.metadata = isObj(obj.metadata) ? (obj.metadata as Meta) : {};
    if (obj.metadata.name !== undefined && obj.metadata.name !== name) {
      throw badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
    }
    if (rt.namespaced && obj.metadata.namespace !== undefined && obj.metadata.namespace !== namespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    const rv = obj.metadata.resourceVersion;
    if (!rv && rt.requireResourceVersionOnUpdate && subresource !== 'status') {
      throw invalid(rt.kind, rt.group, name, [fieldInvalid('metadata.resourceVersion', '0x0', 'must be specified for an update')]);
    }
    if (rv && rv !== current.metadata.resourceVersion) throw conflict(rt, name);
    return this.writeUpdate(rt, current, obj, subresource, opts);
  }

  async patch(rt: ResourceType, namespace: string | undefined, name: string, type: PatchType, raw: string, subresource: string | undefined, opts: WriteOptions & { force?: boolean } = {}): Promise<KubeObject> {
    let current: KubeObject;
    try {
      current = this.get(rt, namespace, name);
    } catch (err) {
      // Server-side apply creates what does not exist yet.
      if (type === 'apply' && err instanceof ApiError && err.code === 404 && !subresource) {
        const body = parseYaml(raw) as KubeObject;
        return this.create(rt, namespace, { ...body, metadata: { ...body.metadata, name } }, opts);
      }
      throw err;
    }
    const base: Obj = subresource === 'scale' ? this.scaleOf(rt, current) : current;
    let patched: unknown;
    let body: unknown;
    try {
      body = type === 'apply' ? parseYaml(raw) : JSON.parse(raw);
    } catch (e) {
      throw badRequest(`error decoding patch: ${(e as Error).message}`);
    }
    switch (type) {
      case 'json': patched = jsonPatch(base, body); break;
      case 'merge': patched = mergePatch(base, body); break;
      case 'strategic':
        if (rt.schema) throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
        patched = strategicMergePatch(base, body);
        break;
      case 'apply':
        // Simplified server-side apply: the applied configuration is merged over the live object
        // (no field ownership, so fields dropped from the configuration are not removed).
        patched = rt.schema ? mergePatch(base, body) : strategicMergePatch(base, body);
        break;
    }
    if (!isObj(patched)) throw badRequest('patch produced an invalid object');
    const obj = patched as KubeObject;
    if (!isObj(obj.metadata)) obj.metadata = {};
    if (subresource === 'scale') return this.writeScale(rt, current, obj, opts);
    const rv = obj.metadata.resourceVersion;
    if (rv && rv !== current.metadata.resourceVersion) throw conflict(rt, name);
    obj.metadata.resourceVersion = current.metadata.resourceVersion as string;
    if (obj.metadata.name !== name) throw badRequest(`the name of the object (${String(obj.metadata.name)}) does not match the name on the URL (${name})`);
    return this.writeUpdate(rt, current, obj, subresource, opts);
  }

  private async writeUpdate(rt: ResourceType, current: KubeObject, incoming: KubeObject, subresource: string | undefined, opts: WriteOptions): Promise<KubeObject> {
    const name = current.metadata.name as string;
    if (subresource && subresource !== 'status') throw notFound(rt, `${name}/${subresource}`);
    let obj: KubeObject;
    const stored = rt.toStorage ? rt.toStorage(incoming) : incoming;
    const old = rt.toStorage ? rt.toStorage(current) : current;
    if (subresource === 'status') {
      if (!rt.status) throw notFound(rt, `${name}/status`);
      // Status writes change status only; everything else is taken from the stored object.
      obj = structuredClone(old);
      if ('status' in stored) obj.status = stored.status;
      else delete obj.status;
    } else {
      obj = stored;
      if (rt.status) {
        if ('status' in old) obj.status = structuredClone(old.status);
        else delete obj.status;
      }
    }
    const meta = obj.metadata;
    const oldMeta = old.metadata;
    for (const k of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation'] as const) {
      if (oldMeta[k] === undefined) delete meta[k];
      else (meta as Obj)[k] = oldMeta[k];
    }
    meta.name = oldMeta.name;
    if (rt.namespaced) meta.namespace = oldMeta.namespace;
    else delete meta.namespace;
    delete meta.managedFields;
    delete meta.selfLink;
    if (subresource !== 'status') {
      this.pruneAndDefault(rt, obj, opts);
      obj = await this.admit(rt, 'UPDATE', obj, old, opts);
      if (rt.schema) this.pruneAndDefault(rt, obj, { ...opts, fieldValidation: 'Ignore' });
      rt.prepareUpdate?.(obj, old);
    } else if (rt.schema) this.pruneAndDefault(rt, obj, { ...opts, fieldValidation: 'Ignore' });
    if (rt.generation && specPart(rt, obj) !== specPart(rt, old)) obj.metadata.generation = ((old.metadata.generation as number | undefined) ?? 0) + 1;
    const errors = [...this.validateMeta(rt, obj), ...this.validateObject(rt, obj, old)];
    if (errors.length) throw invalid(rt.kind, rt.group, name, errors);
    if (rt.plural === 'customresourcedefinitions' && subresource !== 'status') {
      // Names and stored versions follow the spec; the conditions keep their transition times.
      const fresh = establishedStatus(obj);
      const oldStatus = isObj(old.status) ? old.status : {};
      obj.status = { ...fresh, ...(Array.isArray(oldStatus.conditions) ? { conditions: oldStatus.conditions } : {}) };
    }
    // Nothing changed: the real server answers with the stored object and no new resourceVersion.
    obj.metadata.resourceVersion = oldMeta.resourceVersion as string;
    if (stableJson(obj) === stableJson(old)) return current;
    await this.validateAdmission(rt, 'UPDATE', obj, old, opts, subresource);
    if (opts.dryRun) return this.present(rt, obj);
    if (meta.deletionTimestamp && (meta.finalizers ?? []).length === 0) {
      // The last finalizer is gone: the pending deletion completes now.
      const gone = this.store.remove(rt.storageKey, meta.namespace, name) as KubeObject;
      this.afterDelete(rt, gone);
      return this.present(rt, gone);
    }
    const saved = this.store.put(rt.storageKey, obj);
    this.afterWrite(rt, saved);
    return this.present(rt, saved);
  }

  async delete(rt: ResourceType, namespace: string | undefined, name: string, opts: DeleteOptions = {}): Promise<{ object: KubeObject; finished: boolean }> {
    const current = this.store.get(rt.storageKey, rt.namespaced ? namespace : undefined, name);
    if (!current) throw notFound(rt, name);
    const pre = opts.preconditions ?? {};
    if (pre.uid && pre.uid !== current.metadata.uid) {
      throw new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${rt.group ? `${rt.plural}.${rt.group}` : rt.plural} "${name}": Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${String(current.metadata.uid)}`);
    }
    if (pre.resourceVersion && pre.resourceVersion !== current.metadata.resourceVersion) {
      throw new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${rt.group ? `${rt.plural}.${rt.group}` : rt.plural} "${name}": Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${String(current.metadata.resourceVersion)}`);
    }
    if (opts.dryRun) return { object: this.present(rt, current), finished: true };
    const isNamespace = rt.group === '' && rt.plural === 'namespaces';
    if (isNamespace) {
      this.terminateNamespace(current);
      const after = this.store.get(rt.storageKey, undefined, name);
      return { object: this.present(rt, after ?? current), finished: after === undefined };
    }
    const finalizers = current.metadata.finalizers ?? [];
    if (opts.propagationPolicy === 'Foreground' && this.dependentsOf(current).length > 0 && !finalizers.includes('foregroundDeletion')) {
      finalizers.push('foregroundDeletion');
      current.metadata.finalizers = finalizers;
    }
    if (finalizers.length > 0) {
      if (!current.metadata.deletionTimestamp) {
        current.metadata.deletionTimestamp = now();
        current.metadata.deletionGracePeriodSeconds = 0;
        const saved = this.store.put(rt.storageKey, current);
        if (finalizers.includes('foregroundDeletion')) {
          this.collectDependents(saved);
          this.finishForeground(rt, saved);
          const after = this.store.get(rt.storageKey, saved.metadata.namespace, name);
          return { object: this.present(rt, after ?? saved), finished: after === undefined };
        }
        return { object: this.present(rt, saved), finished: false };
      }
      return { object: this.present(rt, current), finished: false };
    }
    const removed = this.store.remove(rt.storageKey, current.metadata.namespace, name) as KubeObject;
    this.afterDelete(rt, removed, opts.propagationPolicy);
    return { object: this.present(rt, removed), finished: true };
  }

  async deleteCollection(rt: ResourceType, namespace: string | undefined, opts: ListOptions & DeleteOptions): Promise<KubeObject[]> {
    const { items } = this.list(rt, namespace, { labelSelector: opts.labelSelector ?? null, fieldSelector: opts.fieldSelector ?? null });
    const out: KubeObject[] = [];
    for (const o of items) {
      try {
        out.push((await this.delete(rt, o.metadata.namespace, o.metadata.name as string, opts)).object);
      } catch (err) {
        if (!(err instanceof ApiError && err.code === 404)) throw err;
      }
    }
    return out;
  }

  // ----- scale subresource -----

  scaleOf(rt: ResourceType, o: KubeObject): KubeObject {
    if (!rt.scale) throw notFound(rt, `${String(o.metadata.name)}/scale`);
    const read = (path: string | undefined) => {
      let v: unknown = o;
      for (const p of (path ?? '').split('.').filter(Boolean)) v = isObj(v) ? v[p] : undefined;
      return v;
    };
    const specReplicas = read(rt.scale.specReplicasPath);
    const selector = isObj((o.spec as Obj | undefined)?.selector)
      ? (labelSelectorRequirements((o.spec as Obj).selector) ?? []).map((r) => ('values' in r ? (r.op === 'in' && r.values.length === 1 ? `${r.key}=${r.values[0]}` : `${r.key} ${r.op} (${r.values.join(',')})`) : r.op === 'exists' ? r.key : `!${r.key}`)).join(',')
      : read(rt.scale.labelSelectorPath);
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: {
        name: o.metadata.name, namespace: o.metadata.namespace, uid: o.metadata.uid,
        resourceVersion: o.metadata.resourceVersion, creationTimestamp: o.metadata.creationTimestamp,
      },
      spec: { replicas: typeof specReplicas === 'number' ? specReplicas : 0 },
      status: { replicas: (read(rt.scale.statusReplicasPath) as number | undefined) ?? 0, ...(selector ? { selector } : {}) },
    };
  }

  getScale(rt: ResourceType, namespace: string | undefined, name: string): KubeObject {
    return this.scaleOf(rt, this.get(rt, namespace, name));
  }

  private async writeScale(rt: ResourceType, current: KubeObject, scale: Obj, opts: WriteOptions): Promise<KubeObject> {
    if (!rt.scale) throw notFound(rt, `${String(current.metadata.name)}/scale`);
    const meta = (scale.metadata ?? {}) as Meta;
    if (meta.resourceVersion && meta.resourceVersion !== current.metadata.resourceVersion) throw conflict(rt, current.metadata.name as string);
    const replicas = (scale.spec as Obj | undefined)?.replicas;
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
      throw invalid('Scale', 'autoscaling', current.metadata.name as string, [fieldInvalid('spec.replicas', replicas ?? null, 'must be greater than or equal to 0')]);
    }
    const next = structuredClone(current);
    const parts = rt.scale.specReplicasPath.split('.').filter(Boolean);
    let cur: Obj = next;
    for (const p of parts.slice(0, -1)) cur = (isObj(cur[p]) ? cur[p] : (cur[p] = {})) as Obj;
    cur[parts[parts.length - 1] as string] = replicas;
    const saved = await this.writeUpdate(rt, current, next, undefined, opts);
    return this.scaleOf(rt, saved);
  }

  // ----- helpers -----

  private checkKind(rt: ResourceType, obj: KubeObject): void {
    if (obj.kind !== undefined && obj.kind !== rt.kind) {
      throw badRequest(`the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${apiVersionOf(rt)})`);
    }
    if (obj.apiVersion !== undefined && obj.apiVersion !== apiVersionOf(rt)) {
      throw badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${apiVersionOf(rt)})`);
    }
    obj.apiVersion = apiVersionOf(rt);
    obj.kind = rt.kind;
  }

  private requireNamespace(ns: string): void {
    const nsObj = this.store.get('/namespaces', undefined, ns);
    if (!nsObj) throw new ApiError(404, 'NotFound', `namespaces "${ns}" not found`, { name: ns, kind: 'namespaces' });
    if (nsObj.metadata.deletionTimestamp) {
      throw new ApiError(403, 'Forbidden', `unable to create new content in namespace ${ns} because it is being terminated`, { name: ns, kind: 'namespaces' });
    }
  }

  private pruneAndDefault(rt: ResourceType, obj: KubeObject, opts: WriteOptions): void {
    if (!rt.schema) return;
    const dropped = rt.schema.pruneAndDefault(obj);
    if (dropped.length === 0) return;
    if (opts.fieldValidation === 'Strict') {
      const list = dropped.map((d) => `unknown field "${d}"`);
      throw badRequest(`strict decoding error: ${list.join(', ')}`);
    }
    if (opts.fieldValidation === 'Warn') opts.warnings?.push(...dropped.map((d) => `unknown field "${d}"`));
  }

  private validateMeta(rt: ResourceType, obj: KubeObject): FieldError[] {
    const errors: FieldError[] = [];
    const meta = obj.metadata;
    const name = meta.name;
    if (!name) errors.push(fieldRequired('metadata.name', 'name or generateName is required'));
    else {
      const dnsLabel = rt.plural === 'namespaces' || (rt.group === '' && rt.plural === 'services');
      const re = dnsLabel ? DNS_LABEL : DNS_SUBDOMAIN;
      const max = dnsLabel ? 63 : 253;
      if (name.length > max || (!re.test(name) && !(rt.group === 'rbac.authorization.k8s.io' || rt.plural === 'events'))) {
        errors.push(fieldInvalid('metadata.name', name, dnsLabel
          ? `a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`
          : `a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`));
      }
    }
    for (const [k, v] of Object.entries(meta.labels ?? {})) {
      if (!LABEL_KEY.test(k)) errors.push(fieldInvalid('metadata.labels', k, 'name part must consist of alphanumeric characters, \'-\', \'_\' or \'.\', and must start and end with an alphanumeric character'));
      if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v)) errors.push(fieldInvalid('metadata.labels', v, 'a valid label must be an empty string or consist of alphanumeric characters, \'-\', \'_\' or \'.\', and must start and end with an alphanumeric character'));
    }
    for (const [k, v] of Object.entries(meta.annotations ?? {})) {
      if (typeof v !== 'string') errors.push(fieldInvalid(`metadata.annotations`, k, 'annotation values must be strings'));
    }
    return errors;
  }

  private validateObject(rt: ResourceType, obj: KubeObject, old: KubeObject | undefined): FieldError[] {
    const errors: FieldError[] = [];
    if (rt.schema) errors.push(...rt.schema.validate(obj, old));
    if (rt.validate) errors.push(...rt.validate(obj, old));
    if (rt.plural === 'customresourcedefinitions' && rt.group === 'apiextensions.k8s.io') errors.push(...compileCrd(obj).errors);
    return errors;
  }

  private async admit(rt: ResourceType, operation: Operation, obj: KubeObject, old: KubeObject | undefined, opts: WriteOptions): Promise<KubeObject> {
    const configs = this.store.list('admissionregistration.k8s.io/mutatingwebhookconfigurations');
    if (configs.length === 0) return obj;
    const ns = rt.namespaced ? obj.metadata.namespace : undefined;
    const nsObj = ns ? this.store.get('/namespaces', undefined, ns) : undefined;
    const mutated = await runMutatingWebhooks(configs, {
      rt, operation, object: obj, ...(old ? { oldObject: old } : {}), ...(ns ? { namespace: ns } : {}),
      namespaceLabels: nsObj?.metadata.labels ?? {},
      user: opts.user ?? ADMIN,
      dryRun: opts.dryRun ?? false,
    }, this.resolveService);
    if (!isObj(mutated.metadata)) mutated.metadata = {};
    return mutated;
  }

  private async validateAdmission(rt: ResourceType, operation: Operation, obj: KubeObject, old: KubeObject | undefined, opts: WriteOptions, subresource?: string): Promise<void> {
    const configs = this.store.list('admissionregistration.k8s.io/validatingwebhookconfigurations');
    if (configs.length === 0) return;
    const ns = rt.namespaced ? obj.metadata.namespace : undefined;
    const nsObj = ns ? this.store.get('/namespaces', undefined, ns) : undefined;
    await runValidatingWebhooks(configs, {
      rt, operation, object: obj, ...(old ? { oldObject: old } : {}), ...(ns ? { namespace: ns } : {}),
      ...(subresource ? { subresource } : {}),
      namespaceLabels: nsObj?.metadata.labels ?? {},
      user: opts.user ?? ADMIN,
      dryRun: opts.dryRun ?? false,
    }, this.resolveService);
  }

  /** Keeps derived state in step with writes: CRDs register their types. */
  private afterWrite(rt: ResourceType, o: KubeObject): void {
    if (rt.group === 'apiextensions.k8s.io' && rt.plural === 'customresourcedefinitions') {
      if (o.metadata.deletionTimestamp) return;
      const { types } = compileCrd(o);
      this.registry.removeCrd(o.metadata.name as string);
      for (const t of types) this.registry.add(t);
    }
    if (rt.group === '' && rt.plural === 'namespaces' && !this.store.get('/serviceaccounts', o.metadata.name, 'default')) {
      // The serviceaccount controller gives every namespace a "default" ServiceAccount.
      const sa: KubeObject = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: o.metadata.name as string, uid: randomUUID(), creationTimestamp: now() } };
      this.store.put('/serviceaccounts', sa);
    }
  }

  private afterDelete(rt: ResourceType, o: KubeObject, propagation?: string): void {
    if (rt.group === 'apiextensions.k8s.io' && rt.plural === 'customresourcedefinitions') {
      // Deleting a CRD deletes all its objects, then the type disappears from discovery.
      const spec = o.spec as { group: string; names: { plural: string } };
      for (const cr of this.store.list(`${spec.group}/${spec.names.plural}`)) {
        this.store.remove(`${spec.group}/${spec.names.plural}`, cr.metadata.namespace, cr.metadata.name as string);
      }
      this.registry.removeCrd(o.metadata.name as string);
    }
    if (propagation !== 'Orphan') this.collectDependents(o);
    this.releaseForegroundOwners(o);
    const ns = o.metadata.namespace;
    if (ns && this.terminating.has(ns)) this.finishNamespace(ns);
  }

  private dependentsOf(owner: KubeObject): { bucket: string; obj: KubeObject }[] {
    const out: { bucket: string; obj: KubeObject }[] = [];
    for (const bucket of this.store.bucketNames()) {
      for (const o of this.store.list(bucket)) {
        if ((o.metadata.ownerReferences ?? []).some((r) => r.uid === owner.metadata.uid)) out.push({ bucket, obj: o });
      }
    }
    return out;
  }

  /** The garbage collector, synchronously: dependents of a deleted (or foreground-deleting) owner go too. */
  private collectDependents(owner: KubeObject): void {
    for (const { bucket, obj } of this.dependentsOf(owner)) {
      const rt = this.registry.all().find((t) => t.storageKey === bucket && !t.fromStorage);
      if (!rt) continue;
      const refs = (obj.metadata.ownerReferences ?? []).filter((r) => r.uid !== owner.metadata.uid);
      if (refs.length > 0) {
        // Other owners remain: only this owner's reference is dropped.
        obj.metadata.ownerReferences = refs;
        this.store.put(bucket, obj);
        continue;
      }
      void this.delete(rt, obj.metadata.namespace, obj.metadata.name as string, { propagationPolicy: 'Background' }).catch(() => undefined);
    }
  }

  /** A dependent is gone: owners waiting for it in foreground deletion may now finish. */
  private releaseForegroundOwners(dependent: KubeObject): void {
    for (const ref of dependent.metadata.ownerReferences ?? []) {
      const ownerRt = this.registry.byKind(ref.apiVersion, ref.kind);
      if (!ownerRt) continue;
      const owner = this.store.get(ownerRt.storageKey, ownerRt.namespaced ? dependent.metadata.namespace : undefined, ref.name);
      if (owner && owner.metadata.uid === ref.uid) this.finishForeground(ownerRt, owner);
    }
  }

  private finishForeground(rt: ResourceType, owner: KubeObject): void {
    const finalizers = owner.metadata.finalizers ?? [];
    if (!owner.metadata.deletionTimestamp || !finalizers.includes('foregroundDeletion') || this.dependentsOf(owner).length > 0) return;
    owner.metadata.finalizers = finalizers.filter((f) => f !== 'foregroundDeletion');
    if (owner.metadata.finalizers.length > 0) {
      this.store.put(rt.storageKey, owner);
      return;
    }
    const gone = this.store.remove(rt.storageKey, owner.metadata.namespace, owner.metadata.name as string);
    if (gone) this.afterDelete(rt, gone);
  }

  /** Namespace deletion: mark Terminating, delete the contents, remove it once empty. */
  private terminateNamespace(ns: KubeObject): void {
    const name = ns.metadata.name as string;
    if (!ns.metadata.deletionTimestamp) {
      ns.metadata.deletionTimestamp = now();
      ns.metadata.deletionGracePeriodSeconds = 0;
      ns.status = { phase: 'Terminating' };
      this.store.put('/namespaces', ns);
    }
    this.terminating.add(name);
    for (const rt of this.registry.all()) {
      if (!rt.namespaced || rt.fromStorage) continue;
      for (const o of this.store.list(rt.storageKey, name)) {
        void this.delete(rt, name, o.metadata.name as string, { propagationPolicy: 'Background' }).catch(() => undefined);
      }
    }
    this.finishNamespace(name);
  }

  private finishNamespace(name: string): void {
    const remaining = this.registry.all().some((rt) => rt.namespaced && !rt.fromStorage && this.store.list(rt.storageKey, name).length > 0);
    if (remaining) return;
    this.terminating.delete(name);
    if (this.store.get('/namespaces', undefined, name)) this.store.remove('/namespaces', undefined, name);
  }
}
