/**
 * Label and field selectors as the apiserver parses them from `?labelSelector=` / `?fieldSelector=`.
 * Labels: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`. Fields: `=`, `==`, `!=`
 * over dotted paths (metadata.name, metadata.namespace, spec.nodeName, status.phase, and — since a
 * test server can afford it — any other scalar path such as involvedObject.uid for events).
 */
import { badRequest } from './errors.ts';

export type LabelRequirement =
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | '!exists' };

export function parseLabelSelector(text: string | null | undefined): LabelRequirement[] {
  const out: LabelRequirement[] = [];
  const src = (text ?? '').trim();
  if (!src) return out;
  // Split on commas that are not inside parentheses.
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const c of src) {
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) { parts.push(cur); cur = ''; continue; }
    cur += c;
  }
  parts.push(cur);
  for (const raw of parts) {
    const p = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(p))) {
      out.push({ key: m[1] as string, op: m[2] as 'in' | 'notin', values: (m[3] as string).split(',').map((v) => v.trim()).filter((v, i, a) => v !== '' || a.length === 1) });
    } else if ((m = /^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/.exec(p))) {
      out.push({ key: m[1] as string, op: m[2] === '!=' ? 'notin' : 'in', values: [m[3] as string] });
    } else if ((m = /^!\s*([^\s!=(),]+)$/.exec(p))) {
      out.push({ key: m[1] as string, op: '!exists' });
    } else if ((m = /^([^\s!=(),]+)$/.exec(p))) {
      out.push({ key: m[1] as string, op: 'exists' });
    } else {
      throw badRequest(`unable to parse requirement: found '${p}', expected: identifier or selector`);
    }
  }
  return out;
}

export function matchesLabels(reqs: LabelRequirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.hasOwn(l, r.key);
    switch (r.op) {
      case 'exists': return has;
      case '!exists': return !has;
      case 'in': return has && r.values.includes(l[r.key] as string);
      case 'notin': return !has || !r.values.includes(l[r.key] as string);
    }
  });
}

/** A metav1.LabelSelector (matchLabels/matchExpressions) as requirements; null selects nothing. */
export function labelSelectorRequirements(sel: unknown): LabelRequirement[] | null {
  if (sel === null || sel === undefined) return null;
  const s = sel as { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] };
  const out: LabelRequirement[] = [];
  for (const [k, v] of Object.entries(s.matchLabels ?? {})) out.push({ key: k, op: 'in', values: [v] });
  for (const e of s.matchExpressions ?? []) {
    const ops: Record<string, LabelRequirement['op']> = { In: 'in', NotIn: 'notin', Exists: 'exists', DoesNotExist: '!exists' };
    const op = ops[e.operator];
    if (!op) throw badRequest(`"${e.operator}" is not a valid label selector operator`);
    if (op === 'exists' || op === '!exists') out.push({ key: e.key, op });
    else out.push({ key: e.key, op, values: e.values ?? [] });
  }
  return out;
}

export interface FieldRequirement {
  path: string;
  negate: boolean;
  value: string;
}

export function parseFieldSelector(text: string | null | undefined): FieldRequirement[] {
  const src = (text ?? '').trim();
  if (!src) return [];
  return src.split(',').map((raw) => {
    const m = /^\s*([^\s!=]+)\s*(==|=|!=)\s*(.*?)\s*$/.exec(raw);
    if (!m) throw badRequest(`invalid selector: '${raw}'; can't understand '${raw}'`);
    return { path: m[1] as string, negate: m[2] === '!=', value: m[3] as string };
  });
}

/** The apiserver only filters on the field labels a type declares; anything else is a 400. */
export function checkFieldLabels(reqs: FieldRequirement[], supported: readonly string[] | undefined): void {
  for (const r of reqs) {
    if (r.path === 'metadata.name' || r.path === 'metadata.namespace') continue;
    if (!supported?.includes(r.path)) throw badRequest(`field label not supported: ${r.path}`);
  }
}

export function matchesFields(reqs: FieldRequirement[], obj: Record<string, unknown>): boolean {
  return reqs.every((r) => {
    let v: unknown = obj;
    for (const part of r.path.split('.')) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[part] : undefined;
    const s = v === undefined || v === null ? '' : String(v);
    return r.negate ? s !== r.value : s === r.value;
  });
}
