/**
 * The three patch formats kubectl, helm and controllers send: JSON Patch (RFC 6902), JSON Merge
 * Patch (RFC 7386) and Kubernetes strategic merge patch. Strategic merge knows the merge keys of
 * the common built-in lists (containers by name, ports by containerPort/port, env by name, ...) and
 * the `$patch`, `$retainKeys`, `$setElementOrder/` and `$deleteFromPrimitiveList/` directives
 * that kubectl's three-way apply emits.
 */
import { badRequest, ApiError } from './errors.ts';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return structuredClone(patch);
  const out: Obj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function decodePointer(ptr: string): string[] {
  if (ptr === '') return [];
  if (!ptr.startsWith('/')) throw badRequest(`the server rejected our request due to an error in our request: invalid JSON pointer "${ptr}"`);
  return ptr.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

interface Op { op: string; path: string; value?: unknown; from?: string }

export function jsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw badRequest('json patch must be an array of operations');
  let root = structuredClone(doc);
  const parentOf = (path: string[]): [unknown, string] => {
    let cur = root;
    for (const seg of path.slice(0, -1)) {
      cur = Array.isArray(cur) ? cur[Number(seg)] : isObj(cur) ? cur[seg] : undefined;
      if (cur === undefined) throw unprocessable(`doc is missing path: "/${path.join('/')}"`);
    }
    return [cur, path[path.length - 1] as string];
  };
  const get = (path: string[]): unknown => {
    let cur = root;
    for (const seg of path) {
      cur = Array.isArray(cur) ? cur[Number(seg)] : isObj(cur) && Object.hasOwn(cur, seg) ? cur[seg] : undefined;
      if (cur === undefined) throw unprocessable(`doc is missing key: /${path.join('/')}`);
    }
    return cur;
  };
  const remove = (path: string[]): unknown => {
    const [parent, key] = parentOf(path);
    if (Array.isArray(parent)) {
      const i = Number(key);
      if (!(i >= 0 && i < parent.length)) throw unprocessable(`unable to remove nonexistent key: ${key}: missing value`);
      return parent.splice(i, 1)[0];
    }
    if (!isObj(parent) || !Object.hasOwn(parent, key)) throw unprocessable(`unable to remove nonexistent key: ${key}: missing value`);
    const v = parent[key];
    delete parent[key];
    return v;
  };
  const add = (path: string[], value: unknown, replace: boolean) => {
    if (path.length === 0) { root = value; return; }
    const [parent, key] = parentOf(path);
    if (Array.isArray(parent)) {
      const i = key === '-' ? parent.length : Number(key);
      if (!(i >= 0 && i <= parent.length)) throw unprocessable(`unable to access invalid index: ${key}`);
      if (replace) {
        if (i >= parent.length) throw unprocessable(`unable to replace nonexistent index: ${key}`);
        parent[i] = value;
      } else parent.splice(i, 0, value);
    } else if (isObj(parent)) {
      if (replace && !Object.hasOwn(parent, key)) throw unprocessable(`replace operation does not apply: doc is missing key: /${path.join('/')}: missing value`);
      parent[key] = value;
    } else throw unprocessable(`doc is missing path: /${path.join('/')}`);
  };
  for (const raw of ops as Op[]) {
    const path = decodePointer(raw.path);
    switch (raw.op) {
      case 'add': add(path, structuredClone(raw.value), false); break;
      case 'replace': add(path, structuredClone(raw.value), true); break;
      case 'remove': remove(path); break;
      case 'move': { const v = remove(decodePointer(raw.from ?? '')); add(path, v, false); break; }
      case 'copy': add(path, structuredClone(get(decodePointer(raw.from ?? ''))), false); break;
      case 'test':
        if (JSON.stringify(get(path)) !== JSON.stringify(raw.value)) throw unprocessable(`testing value /${path.join('/')} failed: test failed`);
        break;
      default: throw badRequest(`Unexpected kind: ${raw.op}`);
    }
  }
  return root;
}

const unprocessable = (msg: string) => new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: ${msg}`);

/** The patchMergeKey of a list, by field name and (for `ports`) where it sits. */
function mergeKeyFor(field: string, path: string[]): string | undefined {
  switch (field) {
    case 'containers': case 'initContainers': case 'ephemeralContainers': case 'volumes': case 'env':
    case 'imagePullSecrets': case 'resourceClaims': case 'schedulingGates':
    // (Mutating|Validating)WebhookConfiguration.webhooks: patchMergeKey "name" (helm upgrades rely on it).
    case 'webhooks':
      return 'name';
    case 'ports': {
      const parent = path[path.length - 1];
      return parent === 'containers' || parent === 'initContainers' || parent === 'ephemeralContainers' ? 'containerPort' : 'port';
    }
    case 'volumeMounts': return 'mountPath';
    case 'volumeDevices': return 'devicePath';
    case 'conditions': return 'type';
    case 'ownerReferences': return 'uid';
    case 'hostAliases': return 'ip';
    case 'topologySpreadConstraints': return 'topologyKey';
    default: return undefined;
  }
}

/** Primitive lists that strategic merge unions instead of replacing. */
const MERGED_PRIMITIVE_LISTS = new Set(['finalizers']);

export function strategicMergePatch(target: unknown, patch: unknown): unknown {
  return smpMap(isObj(target) ? structuredClone(target) : {}, patch, []);
}

function smpMap(target: Obj, patch: unknown, path: string[]): unknown {
  if (!isObj(patch)) return structuredClone(patch);
  const directive = patch.$patch;
  if (directive === 'delete') return undefined;
  if (directive === 'replace') {
    const rest = { ...patch };
    delete rest.$patch;
    return stripDirectives(rest);
  }
  const out: Obj = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const list = out[field];
      if (Array.isArray(list) && Array.isArray(v)) out[field] = list.filter((x) => !v.includes(x));
      continue;
    }
    if (v === null) { delete out[k]; continue; }
    if (Array.isArray(v)) {
      const merged = smpList(out[k], v, k, path);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
      continue;
    }
    if (isObj(v)) {
      const merged = smpMap(isObj(out[k]) ? (out[k] as Obj) : {}, v, [...path, k]);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
      continue;
    }
    out[k] = v;
  }
  if (Array.isArray(patch.$retainKeys)) {
    const keep = new Set(patch.$retainKeys as string[]);
    for (const k of Object.keys(out)) if (!keep.has(k)) delete out[k];
  }
  return out;
}

function smpList(current: unknown, patch: unknown[], field: string, path: string[]): unknown[] | undefined {
  const existing = Array.isArray(current) ? current : [];
  if (patch.some((x) => isObj(x) && x.$patch === 'replace')) {
    return patch.filter((x) => !(isObj(x) && x.$patch === 'replace')).map(stripDirectives);
  }
  const key = mergeKeyFor(field, path);
  if (key) {
    const out = existing.map((x) => structuredClone(x));
    for (const item of patch) {
      if (!isObj(item)) continue;
      const idx = out.findIndex((x) => isObj(x) && x[key] === item[key]);
      if (item.$patch === 'delete') {
        if (idx >= 0) out.splice(idx, 1);
        continue;
      }
      if (idx >= 0) out[idx] = smpMap(out[idx] as Obj, item, [...path, field]);
      else out.push(stripDirectives(item));
    }
    return out;
  }
  if (MERGED_PRIMITIVE_LISTS.has(field)) {
    const out = [...existing];
    for (const x of patch) if (!out.includes(x)) out.push(x);
    return out;
  }
  return patch.map(stripDirectives);
}

function stripDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObj(v)) return v;
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) {
    if (k.startsWith('$')) continue;
    if (x === null) continue;
    out[k] = stripDirectives(x);
  }
  return out;
}
