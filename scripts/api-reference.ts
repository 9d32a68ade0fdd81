/**
 * Generates docs/api-reference.md from the CRD schemas in crds/: every kind, every field with its
 * type, default and validation, and the CEL rules (x-kubernetes-validations) with their messages.
 * The CRDs are the API, so the reference is derived from them rather than written beside them;
 * test/docs/api-reference.test.ts fails when the committed file differs from this output.
 *
 *   npm run docs:api          rewrite docs/api-reference.md
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CRD_DIR = join(ROOT, 'crds');
export const OUTPUT = join(ROOT, 'docs', 'api-reference.md');

interface Schema {
  type?: string;
  format?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  required?: string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  pattern?: string;
  uniqueItems?: boolean;
  'x-kubernetes-validations'?: { rule: string; message?: string; messageExpression?: string; fieldPath?: string; reason?: string }[];
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: string;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  [other: string]: unknown;
}

interface Crd {
  spec: {
    group: string;
    names: { kind: string; plural: string; shortNames?: string[] };
    scope: string;
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      schema: { openAPIV3Schema: Schema };
      additionalPrinterColumns?: { name: string; type: string; jsonPath: string; description?: string; priority?: number }[];
    }[];
  };
}

/** Keywords rendered in their own columns or sections; anything else lands in Validation as is. */
const HANDLED = new Set([
  'type', 'format', 'description', 'default', 'enum', 'required', 'properties', 'items', 'additionalProperties',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'minItems', 'maxItems',
  'minProperties', 'maxProperties', 'pattern', 'uniqueItems', 'x-kubernetes-validations', 'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys', 'x-kubernetes-map-type', 'x-kubernetes-int-or-string', 'x-kubernetes-preserve-unknown-fields',
]);

interface Row { path: string; type: string; required: boolean; default: string; validation: string[]; description: string }
interface Rule { path: string; rule: string; message: string; fieldPath: string | undefined }

/** The whole reference, as committed in docs/api-reference.md. */
export function renderApiReference(crdDir = CRD_DIR): string {
  const crds = readdirSync(crdDir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => parse(readFileSync(join(crdDir, f), 'utf8')) as Crd);
  const out: string[] = [
    '# API reference',
    '',
    '<!-- Generated from the CRD schemas in crds/ by scripts/api-reference.ts: do not edit by hand; run `npm run docs:api`. -->',
    '',
    'Every Sluice kind, every field: its type, its default, what validation the API server applies',
    '(the OpenAPI schema and the CEL rules, with the message a user sees) and what it means.',
    'The operator and the sidecar\'s standalone mode run the same checks and more (`lib/policy`):',
    'a policy the schema accepts can still be refused with `Accepted=False` and the field path.',
    'Field paths use `[]` for the items of a list. Examples of each kind: [`examples/policies.yaml`](../examples/policies.yaml).',
    '',
  ];
  out.push(...crds.map((c) => `- [${c.spec.names.kind}](#${anchor(c.spec.names.kind)})`), '');
  for (const crd of crds) out.push(...renderKind(crd));
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
}

function renderKind(crd: Crd): string[] {
  const { group, names, scope } = crd.spec;
  const out: string[] = [];
  for (const v of crd.spec.versions) {
    const root = v.schema.openAPIV3Schema;
    out.push(`## ${names.kind}`, '');
    out.push(`\`${group}/${v.name}\` · ${scope === 'Namespaced' ? 'namespaced' : 'cluster-scoped'} · \`kubectl get ${[names.plural, ...(names.shortNames ?? [])].join('` / `')}\``
      + `${v.storage ? '' : ' · not the storage version'}${v.served ? '' : ' · not served'}`, '');
    if (root.description) out.push(oneLine(root.description), '');
    for (const part of ['spec', 'status'] as const) {
      const s = root.properties?.[part];
      if (!s) continue;
      const rows: Row[] = [];
      const rules: Rule[] = [];
      walk(s, part, (root.required ?? []).includes(part), rows, rules);
      out.push(`### ${names.kind} ${part}`, '');
      if (part === 'status') out.push('Written by the operator (the status subresource); read-only for users.', '');
      out.push('| Field | Type | Default | Validation | Description |', '| --- | --- | --- | --- | --- |');
      for (const r of rows) {
        const validation = [...(r.required ? ['required'] : []), ...r.validation];
        out.push(`| \`${r.path}\` | ${cell(r.type)} | ${r.default ? code(r.default) : ''} | ${validation.map(cell).join('; ')} | ${cell(oneLine(r.description))} |`);
      }
      out.push('');
      if (rules.length > 0) {
        out.push(`Rules checked by the API server (CEL, \`x-kubernetes-validations\`) on the ${part}:`, '');
        for (const r of rules) {
          const at = r.fieldPath ? `${r.path}${r.fieldPath}` : r.path;
          out.push(`- \`${at}\`: ${r.message} — \`${r.rule.replace(/`/g, '\'')}\``);
        }
        out.push('');
      }
    }
    if (v.additionalPrinterColumns?.length) {
      out.push(`### ${names.kind} in \`kubectl get\``, '', '| Column | From | Meaning |', '| --- | --- | --- |');
      for (const c of v.additionalPrinterColumns) {
        out.push(`| ${c.name}${c.priority ? ' (`-o wide`)' : ''} | ${code(c.jsonPath)} | ${cell(oneLine(c.description ?? ''))} |`);
      }
      out.push('');
    }
  }
  return out;
}

function walk(s: Schema, path: string, required: boolean, rows: Row[], rules: Rule[]): void {
  rows.push({ path, type: typeOf(s), required, default: s.default === undefined ? '' : JSON.stringify(s.default), validation: validation(s), description: s.description ?? '' });
  for (const v of s['x-kubernetes-validations'] ?? []) {
    rules.push({ path, rule: v.rule, message: v.message ?? (v.messageExpression ? `(computed: ${v.messageExpression})` : `failed rule: ${v.rule}`), fieldPath: v.fieldPath });
  }
  for (const [name, child] of Object.entries(s.properties ?? {})) walk(child, `${path}.${name}`, (s.required ?? []).includes(name), rows, rules);
  if (s.items && (s.items.properties || s.items['x-kubernetes-validations'] || s.items.items)) walkItems(s.items, `${path}[]`, rows, rules);
  if (typeof s.additionalProperties === 'object' && s.additionalProperties.properties) walkItems(s.additionalProperties, `${path}.<key>`, rows, rules);
}

/** The items of a list (or values of a map): their rules and fields, not a row of their own unless they carry validation. */
function walkItems(s: Schema, path: string, rows: Row[], rules: Rule[]): void {
  for (const v of s['x-kubernetes-validations'] ?? []) {
    rules.push({ path, rule: v.rule, message: v.message ?? `failed rule: ${v.rule}`, fieldPath: v.fieldPath });
  }
  for (const [name, child] of Object.entries(s.properties ?? {})) walk(child, `${path}.${name}`, (s.required ?? []).includes(name), rows, rules);
  if (s.items) walkItems(s.items, `${path}[]`, rows, rules);
}

function typeOf(s: Schema): string {
  if (s['x-kubernetes-int-or-string']) return 'integer or string';
  const t = s.type ?? 'any';
  if (t === 'array') return `[]${s.items ? typeOf(s.items) : 'any'}`;
  if (t === 'object' && typeof s.additionalProperties === 'object') return `map[string]${typeOf(s.additionalProperties)}`;
  return s.format ? `${t} (${s.format})` : t;
}

function validation(s: Schema): string[] {
  const v: string[] = [];
  if (s.enum) v.push(`one of ${s.enum.map((e) => code(String(e))).join(', ')}`);
  if (s.minimum !== undefined) v.push(`${s.exclusiveMinimum ? '>' : '≥'} ${s.minimum}`);
  if (s.maximum !== undefined) v.push(`${s.exclusiveMaximum ? '<' : '≤'} ${s.maximum}`);
  if (s.minLength !== undefined) v.push(`at least ${count(s.minLength, 'character')}`);
  if (s.maxLength !== undefined) v.push(`at most ${count(s.maxLength, 'character')}`);
  if (s.minItems !== undefined) v.push(`at least ${count(s.minItems, 'item')}`);
  if (s.maxItems !== undefined) v.push(`at most ${count(s.maxItems, 'item')}`);
  if (s.minProperties !== undefined) v.push(`at least ${count(s.minProperties, 'entry', 'entries')}`);
  if (s.maxProperties !== undefined) v.push(`at most ${count(s.maxProperties, 'entry', 'entries')}`);
  if (s.uniqueItems) v.push('unique items');
  if (s.pattern !== undefined) v.push(`matches ${code(s.pattern)}`);
  if (s['x-kubernetes-list-type']) {
    const keys = s['x-kubernetes-list-map-keys'];
    v.push(`list type ${s['x-kubernetes-list-type']}${keys ? ` keyed by ${keys.map(code).join(', ')}` : ''}`);
  }
  if (s['x-kubernetes-map-type']) v.push(`map type ${s['x-kubernetes-map-type']}`);
  if (s['x-kubernetes-preserve-unknown-fields']) v.push('unknown fields kept');
  if (s.items && !s.items.properties) v.push(...validation(s.items).map((x) => `each: ${x}`));
  if (typeof s.additionalProperties === 'object' && !s.additionalProperties.properties) v.push(...validation(s.additionalProperties).map((x) => `each value: ${x}`));
  for (const [k, val] of Object.entries(s)) if (!HANDLED.has(k)) v.push(`${k}: ${JSON.stringify(val)}`);
  return v;
}

function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** Inline code that survives a Markdown table cell (pipes escaped, backticks fenced). */
function code(text: string): string {
  const fence = text.includes('`') ? '``' : '`';
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes. */
export function anchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(OUTPUT, renderApiReference());
  process.stdout.write(`wrote ${OUTPUT}\n`);
}
