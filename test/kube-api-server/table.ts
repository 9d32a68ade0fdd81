/**
 * Server-side printing: kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and prints
 * whatever columns the server returns. Custom resources get their CRD's additionalPrinterColumns
 * (JSONPath, with `[?(@.type=="Ready")]` filters); built-ins get Name (+ a status column) + Age.
 */
import type { KubeObject, PrinterColumn, ResourceType } from './resources.ts';

type Obj = Record<string, unknown>;

/** k8s.io/apimachinery/pkg/util/duration.HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.floor(hours / 24) % 365;
    return dy === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${dy}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

/**
 * Evaluates the JSONPath subset printer columns use: `.a.b`, `.a[0]`, `.a[*].b`, `['a.b']`,
 * and filters `[?(@.k=="v")]` / `[?(@.k!="v")]` / `[?(@.k)]`. Returns every match.
 */
export function jsonPath(obj: unknown, path: string): unknown[] {
  let src = path.trim();
  if (src.startsWith('{') && src.endsWith('}')) src = src.slice(1, -1);
  if (src.startsWith('$')) src = src.slice(1);
  let current: unknown[] = [obj];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === '.') {
      const m = /^\.([A-Za-z0-9_\-$]+|\*)/.exec(src.slice(i));
      if (!m) { i++; continue; }
      const key = m[1] as string;
      current = current.flatMap((v) => {
        if (typeof v !== 'object' || v === null) return [];
        if (key === '*') return Object.values(v as Obj);
        return key in (v as Obj) ? [(v as Obj)[key]] : [];
      });
      i += m[0].length;
      continue;
    }
    if (c === '[') {
      const end = findClose(src, i);
      const inner = src.slice(i + 1, end).trim();
      i = end + 1;
      if (inner === '*') {
        current = current.flatMap((v) => (Array.isArray(v) ? v : typeof v === 'object' && v !== null ? Object.values(v) : []));
      } else if (/^-?\d+$/.test(inner)) {
        const n = Number(inner);
        current = current.flatMap((v) => (Array.isArray(v) ? (v.at(n) === undefined ? [] : [v.at(n)]) : []));
      } else if (/^['"].*['"]$/.test(inner)) {
        const key = inner.slice(1, -1);
        current = current.flatMap((v) => (typeof v === 'object' && v !== null && key in (v as Obj) ? [(v as Obj)[key]] : []));
      } else if (inner.startsWith('?(') && inner.endsWith(')')) {
        const filter = parseFilter(inner.slice(2, -1));
        current = current.flatMap((v) => (Array.isArray(v) ? v.filter(filter) : []));
      } else {
        throw new Error(`unsupported JSONPath segment [${inner}] in ${path}`);
      }
      continue;
    }
    throw new Error(`unsupported JSONPath ${path} at ${i}`);
  }
  return current;
}

function findClose(src: string, open: number): number {
  let depth = 0;
  let quote: string | undefined;
  for (let j = open; j < src.length; j++) {
    const ch = src[j] as string;
    if (quote) { if (ch === quote) quote = undefined; continue; }
    if (ch === '"' || ch === "'") { quote = ch; continue; }
    if (ch === '[') depth++;
    if (ch === ']' && --depth === 0) return j;
  }
  throw new Error(`unterminated [ in JSONPath ${src}`);
}

function parseFilter(expr: string): (v: unknown) => boolean {
  const m = /^@((?:\.[A-Za-z0-9_\-]+)+)\s*(?:(==|!=|<|>|<=|>=)\s*(.+))?$/.exec(expr.trim());
  if (!m) throw new Error(`unsupported JSONPath filter ${expr}`);
  const keys = (m[1] as string).slice(1).split('.');
  const op = m[2];
  const raw = (m[3] ?? '').trim();
  const want: unknown = /^['"].*['"]$/.test(raw) ? raw.slice(1, -1) : raw === 'true' ? true : raw === 'false' ? false : Number(raw);
  return (v) => {
    let cur: unknown = v;
    for (const k of keys) cur = typeof cur === 'object' && cur !== null ? (cur as Obj)[k] : undefined;
    if (!op) return cur !== undefined;
    switch (op) {
      case '==': return cur === want;
      case '!=': return cur !== want;
      case '<': return (cur as number) < (want as number);
      case '>': return (cur as number) > (want as number);
      case '<=': return (cur as number) <= (want as number);
      default: return (cur as number) >= (want as number);
    }
  };
}

interface ColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

const NAME_COLUMN: ColumnDefinition = { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0 };
const AGE_COLUMN: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'CreationTimestamp is a timestamp representing the server time when this object was created.' };

function columnsFor(rt: ResourceType): PrinterColumn[] {
  if (rt.printerColumns) return rt.printerColumns;
  if (rt.kind === 'Pod') return [{ name: 'Status', type: 'string', jsonPath: '.status.phase' }, AGE_COLUMN];
  if (rt.kind === 'Namespace') return [{ name: 'Status', type: 'string', jsonPath: '.status.phase' }, AGE_COLUMN];
  if (rt.kind === 'Deployment') return [{ name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas' }, { name: 'Available', type: 'integer', jsonPath: '.status.availableReplicas' }, AGE_COLUMN];
  if (rt.kind === 'Service') return [{ name: 'Type', type: 'string', jsonPath: '.spec.type' }, { name: 'Cluster-IP', type: 'string', jsonPath: '.spec.clusterIP' }, AGE_COLUMN];
  if (rt.kind === 'Event') {
    return [
      { name: 'Type', type: 'string', jsonPath: '.type' }, { name: 'Reason', type: 'string', jsonPath: '.reason' },
      { name: 'Object', type: 'string', jsonPath: rt.group ? '.regarding.name' : '.involvedObject.name' },
      { name: 'Message', type: 'string', jsonPath: rt.group ? '.note' : '.message' }, AGE_COLUMN,
    ];
  }
  if (rt.kind === 'CustomResourceDefinition') return [{ name: 'Created At', type: 'date', format: 'date-time', jsonPath: '.metadata.creationTimestamp' }];
  return [AGE_COLUMN];
}

function cell(obj: KubeObject, col: PrinterColumn): unknown {
  let values: unknown[];
  try {
    values = jsonPath(obj, col.jsonPath);
  } catch {
    return null;
  }
  const v = values[0];
  if (v === undefined || v === null) return null;
  if (col.type === 'date') {
    if (col.format === 'date-time' || col.name === 'Created At') return v;
    const t = Date.parse(String(v));
    return Number.isNaN(t) ? String(v) : humanDuration(Date.now() - t);
  }
  if (col.type === 'integer' || col.type === 'number') return typeof v === 'number' ? v : Number(v);
  if (col.type === 'boolean') return Boolean(v);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export type IncludeObject = 'None' | 'Metadata' | 'Object';

/** A meta.k8s.io/v1 Table for some objects of one type. */
export function toTable(rt: ResourceType, objects: KubeObject[], listMeta: Obj, include: IncludeObject): Obj {
  const cols = columnsFor(rt);
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMeta,
    columnDefinitions: [
      NAME_COLUMN,
      ...cols.map((c) => ({ name: c.name, type: c.type === 'date' ? 'date' : c.type, format: c.format ?? '', description: c.description ?? '', priority: c.priority ?? 0 })),
    ],
    rows: objects.map((o) => ({
      cells: [o.metadata.name, ...cols.map((c) => cell(o, c))],
      object: include === 'None' ? null
        : include === 'Object' ? o
        : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  };
}

