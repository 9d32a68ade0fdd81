/**
 * Applies an RFC 6902 JSON Patch (add, replace, remove, test) to a copy of a document, as the API
 * server applies an admission webhook's patch: for unit tests of patchers that want the patched
 * object without a server. A failing op throws, as the API server would refuse the patch.
 */
type Obj = Record<string, unknown>;
interface Op { op: string; path: string; value?: unknown }

const segments = (pointer: string): string[] =>
  pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));

export function jsonPatch(doc: unknown, ops: readonly Op[]): unknown {
  let root = structuredClone(doc);
  for (const { op, path, value } of ops) {
    const segs = segments(path);
    if (segs.length === 0) {
      if (op === 'test') {
        if (JSON.stringify(root) !== JSON.stringify(value)) throw new Error(`test of ${path} failed`);
        continue;
      }
      root = structuredClone(value);
      continue;
    }
    let parent: unknown = root;
    for (const s of segs.slice(0, -1)) {
      parent = Array.isArray(parent) ? parent[Number(s)] : (parent as Obj | undefined)?.[s];
      if (parent === undefined || parent === null) throw new Error(`${op} ${path}: the path does not exist`);
    }
    const key = segs[segs.length - 1] as string;
    if (Array.isArray(parent)) {
      const i = key === '-' ? parent.length : Number(key);
      if (op === 'add') parent.splice(i, 0, structuredClone(value));
      else if (op === 'replace' && i < parent.length) parent[i] = structuredClone(value);
      else if (op === 'remove' && i < parent.length) parent.splice(i, 1);
      else if (op === 'test') { if (JSON.stringify(parent[i]) !== JSON.stringify(value)) throw new Error(`test of ${path} failed`); }
      else throw new Error(`${op} ${path}: no such index`);
    } else {
      const o = parent as Obj;
      if (op === 'add') o[key] = structuredClone(value);
      else if ((op === 'replace' || op === 'remove') && Object.hasOwn(o, key)) op === 'replace' ? (o[key] = structuredClone(value)) : delete o[key];
      else if (op === 'test') { if (JSON.stringify(o[key]) !== JSON.stringify(value)) throw new Error(`test of ${path} failed`); }
      else throw new Error(`${op} ${path}: no such member`);
    }
  }
  return root;
}
