/**
 * Structural-schema handling for custom resources, in the order the real apiserver applies it:
 * prune unknown fields → apply defaults → validate (types, enums, bounds, patterns, required, list
 * types) → CEL `x-kubernetes-validations`. Error texts follow k8s.io/apiextensions-apiserver so
 * tests (and users reading kubectl output) see what a real cluster would print.
 */
import { compileCel, CelCompileError, type CelProgram } from './cel.ts';
import {
  fieldInvalid, fieldNotSupported, fieldRequired, fieldTypeInvalid, type FieldError,
} from './errors.ts';

export interface JSONSchemaProps {
  type?: string;
  description?: string;
  properties?: Record<string, JSONSchemaProps>;
  additionalProperties?: JSONSchemaProps | boolean;
  items?: JSONSchemaProps;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  nullable?: boolean;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  multipleOf?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  allOf?: JSONSchemaProps[];
  anyOf?: JSONSchemaProps[];
  oneOf?: JSONSchemaProps[];
  not?: JSONSchemaProps;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: string;
  'x-kubernetes-validations'?: ValidationRule[];
}

export interface ValidationRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  fieldPath?: string;
  reason?: string;
  optionalOldSelf?: boolean;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => structuredClone(v);

/**
 * A schema with its CEL rules compiled. Compilation happens once, when the CRD is registered, so a
 * rule the evaluator does not understand refuses the CRD instead of being skipped per object.
 */
export class CompiledSchema {
  readonly root: JSONSchemaProps;
  private readonly programs = new Map<ValidationRule, CelProgram>();
  private readonly messages = new Map<ValidationRule, CelProgram>();

  constructor(root: JSONSchemaProps) {
    this.root = root;
  }

  /** Compiles every CEL rule; returns the errors (with schema paths) instead of throwing. */
  compile(schemaPath: string): FieldError[] {
    const errors: FieldError[] = [];
    const visit = (s: JSONSchemaProps | undefined, path: string) => {
      if (!s) return;
      (s['x-kubernetes-validations'] ?? []).forEach((r, i) => {
        const p = `${path}.x-kubernetes-validations[${i}].rule`;
        try {
          this.programs.set(r, compileCel(r.rule));
        } catch (err) {
          if (!(err instanceof CelCompileError)) throw err;
          errors.push(fieldInvalid(p, r.rule, `compilation failed: ERROR: <input>: ${err.message}`));
        }
        if (r.messageExpression !== undefined) {
          try {
            this.messages.set(r, compileCel(r.messageExpression));
          } catch (err) {
            if (!(err instanceof CelCompileError)) throw err;
            errors.push(fieldInvalid(`${path}.x-kubernetes-validations[${i}].messageExpression`, r.messageExpression, `messageExpression compilation failed: ERROR: <input>: ${err.message}`));
          }
        }
      });
      for (const [k, v] of Object.entries(s.properties ?? {})) visit(v, `${path}.properties[${k}]`);
      if (isObj(s.additionalProperties)) visit(s.additionalProperties as JSONSchemaProps, `${path}.additionalProperties`);
      visit(s.items, `${path}.items`);
    };
    visit(this.root, schemaPath);
    return errors;
  }

  /**
   * Prunes and defaults `obj` in place (top-level apiVersion/kind/metadata are left to the caller)
   * and returns the paths of the fields it dropped, for `fieldValidation=Strict|Warn`.
   */
  pruneAndDefault(obj: Obj): string[] {
    const dropped: string[] = [];
    for (const [key, s] of Object.entries(this.root.properties ?? {})) {
      if (key === 'metadata' || key === 'apiVersion' || key === 'kind') continue;
      if (!(key in obj)) {
        if (s.default !== undefined) obj[key] = clone(s.default);
        continue;
      }
      obj[key] = pruneDefault(obj[key], s, key, dropped);
      if (obj[key] === undefined) delete obj[key];
    }
    if (!this.root['x-kubernetes-preserve-unknown-fields']) {
      for (const key of Object.keys(obj)) {
        if (!(key in (this.root.properties ?? {})) && key !== 'apiVersion' && key !== 'kind' && key !== 'metadata') {
          dropped.push(key);
          delete obj[key];
        }
      }
    }
    return dropped;
  }

  /** Schema and CEL validation of the whole object, minus metadata (checked by the store). */
  validate(obj: Obj, oldObj?: Obj): FieldError[] {
    const errors: FieldError[] = [];
    const root: JSONSchemaProps = { ...this.root, properties: { ...this.root.properties } };
    delete root.properties?.metadata;
    validateNode(obj, root, '', errors);
    this.runRules(obj, oldObj, this.root, '', errors);
    return errors;
  }

  /** messageExpression (when it yields a non-empty string), else message, else the rule text. */
  private message(rule: ValidationRule, self: unknown, oldSelf: unknown): string {
    const expr = this.messages.get(rule);
    if (expr) {
      try {
        const m = expr.eval({ self, oldSelf });
        if (typeof m === 'string' && m.trim() !== '' && !m.includes('\n')) return m;
      } catch {
        // Like the real server: a failing messageExpression falls back to message / the rule.
      }
    }
    return rule.message ?? `failed rule: ${rule.rule}`;
  }

  private runRules(value: unknown, old: unknown, s: JSONSchemaProps, path: string, errors: FieldError[]): void {
    if (value === undefined || value === null) return;
    for (const rule of s['x-kubernetes-validations'] ?? []) {
      // Transition rules (using oldSelf) only run on updates that have an old value.
      if (rule.rule.includes('oldSelf') && old === undefined && !rule.optionalOldSelf) continue;
      const program = this.programs.get(rule);
      if (!program) continue;
      const at = path + (rule.fieldPath ?? '');
      const shown = at.replace(/^\./, '');
      const type = Array.isArray(value) ? 'array' : isObj(value) ? 'object' : typeof value === 'number' ? (Number.isInteger(value) ? 'integer' : 'number') : typeof value;
      try {
        const ok = program.eval({ self: value, oldSelf: old });
        if (ok !== true) {
          const message = this.message(rule, value, old);
          errors.push({ ...fieldInvalid(shown, type, message), reason: rule.reason ? causeReason(rule.reason) : 'FieldValueInvalid' });
        }
      } catch (err) {
        errors.push(fieldInvalid(shown, type, `${(err as Error).message} evaluating rule: ${rule.rule}`));
      }
    }
    if (isObj(value)) {
      for (const [k, ps] of Object.entries(s.properties ?? {})) {
        if (path === '' && k === 'metadata') continue;
        if (k in value) this.runRules(value[k], isObj(old) ? old[k] : undefined, ps, `${path}.${k}`, errors);
      }
      if (isObj(s.additionalProperties)) {
        for (const [k, v] of Object.entries(value)) {
          this.runRules(v, isObj(old) ? old[k] : undefined, s.additionalProperties as JSONSchemaProps, `${path}[${k}]`, errors);
        }
      }
    } else if (Array.isArray(value) && s.items) {
      const oldItems = Array.isArray(old) ? old : [];
      const keys = s['x-kubernetes-list-map-keys'];
      value.forEach((item, i) => {
        // Transition rules on list items compare with the old item of the same key (map lists only).
        const oldItem = s['x-kubernetes-list-type'] === 'map' && keys
          ? oldItems.find((o) => isObj(o) && isObj(item) && keys.every((k) => o[k] === item[k]))
          : undefined;
        this.runRules(item, oldItem, s.items as JSONSchemaProps, `${path}[${i}]`, errors);
      });
    }
  }
}

function causeReason(reason: string): string {
  return { FieldValueRequired: 'FieldValueRequired', FieldValueForbidden: 'FieldValueForbidden', FieldValueDuplicate: 'FieldValueDuplicate' }[reason] ?? 'FieldValueInvalid';
}

function pruneDefault(value: unknown, s: JSONSchemaProps, path: string, dropped: string[]): unknown {
  if (value === null) return s.nullable ? null : s.default !== undefined ? clone(s.default) : undefined;
  if (isObj(value) && !s['x-kubernetes-int-or-string']) {
    const props = s.properties;
    const preserve = s['x-kubernetes-preserve-unknown-fields'] === true || s['x-kubernetes-embedded-resource'] === true;
    for (const key of Object.keys(value)) {
      const ps = props?.[key];
      if (ps) {
        value[key] = pruneDefault(value[key], ps, `${path}.${key}`, dropped);
        if (value[key] === undefined) delete value[key];
      } else if (isObj(s.additionalProperties)) {
        value[key] = pruneDefault(value[key], s.additionalProperties as JSONSchemaProps, `${path}.${key}`, dropped);
        if (value[key] === undefined) delete value[key];
      } else if (!preserve && s.additionalProperties !== true) {
        dropped.push(`${path}.${key}`);
        delete value[key];
      }
    }
    for (const [key, ps] of Object.entries(props ?? {})) {
      if (!(key in value) && ps.default !== undefined) value[key] = pruneDefault(clone(ps.default), ps, `${path}.${key}`, dropped);
    }
    return value;
  }
  if (Array.isArray(value) && s.items) {
    return value.map((item, i) => {
      const v = pruneDefault(item, s.items as JSONSchemaProps, `${path}[${i}]`, dropped);
      return v === undefined ? null : v;
    });
  }
  return value;
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function fmtNumber(n: number): string {
  return String(n);
}

function validateNode(value: unknown, s: JSONSchemaProps, path: string, errors: FieldError[]): void {
  const at = path.replace(/^\./, '');
  const body = `${at} in body`;
  if (value === null) {
    if (!s.nullable && s.type) errors.push(fieldTypeInvalid(at, 'null', `${body} must be of type ${s.type}: "null"`));
    return;
  }
  const actual = jsonType(value);
  if (s['x-kubernetes-int-or-string']) {
    if (actual !== 'integer' && actual !== 'string') {
      errors.push(fieldTypeInvalid(at, actual, `${body} must be of type integer,string: "${actual}"`));
      return;
    }
  } else if (s.type) {
    const ok = s.type === actual || (s.type === 'number' && actual === 'integer');
    if (!ok) {
      errors.push(fieldTypeInvalid(at, actual, `${body} must be of type ${s.type}: "${actual}"`));
      return;
    }
  }
  if (s.enum && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    errors.push(fieldNotSupported(at, value, s.enum));
  }
  if (typeof value === 'string') {
    if (s.maxLength !== undefined && [...value].length > s.maxLength) {
      errors.push({ field: at, reason: 'FieldValueTooLong', detail: `Too long: may not be more than ${s.maxLength} bytes` });
    }
    if (s.minLength !== undefined && [...value].length < s.minLength) {
      errors.push(fieldInvalid(at, value, `${body} should be at least ${s.minLength} chars long`));
    }
    if (s.pattern !== undefined && !new RegExp(s.pattern, 'u').test(value)) {
      errors.push(fieldInvalid(at, value, `${body} should match '${s.pattern}'`));
    }
    if (s.format === 'date-time' && Number.isNaN(Date.parse(value))) {
      errors.push(fieldInvalid(at, value, `${body} must be of type date-time: "${value}"`));
    }
  }
  if (typeof value === 'number') {
    if (s.minimum !== undefined && (s.exclusiveMinimum ? value <= s.minimum : value < s.minimum)) {
      errors.push(fieldInvalid(at, value, `${body} should be greater than ${s.exclusiveMinimum ? '' : 'or equal to '}${fmtNumber(s.minimum)}`));
    }
    if (s.maximum !== undefined && (s.exclusiveMaximum ? value >= s.maximum : value > s.maximum)) {
      errors.push(fieldInvalid(at, value, `${body} should be less than ${s.exclusiveMaximum ? '' : 'or equal to '}${fmtNumber(s.maximum)}`));
    }
    if (s.multipleOf !== undefined && value % s.multipleOf !== 0) {
      errors.push(fieldInvalid(at, value, `${body} should be a multiple of ${s.multipleOf}`));
    }
  }
  if (Array.isArray(value)) {
    if (s.maxItems !== undefined && value.length > s.maxItems) {
      errors.push({ field: at, reason: 'FieldValueTooMany', detail: `Too many: ${value.length}: must have at most ${s.maxItems} items` });
    }
    if (s.minItems !== undefined && value.length < s.minItems) {
      errors.push(fieldInvalid(at, value.length, `${body} should have at least ${s.minItems} items`));
    }
    const listType = s['x-kubernetes-list-type'];
    if (listType === 'set' || listType === 'map') {
      const keyOf = (v: unknown) => listType === 'set' ? JSON.stringify(v)
        : JSON.stringify((s['x-kubernetes-list-map-keys'] ?? []).map((k) => (isObj(v) ? v[k] : undefined)));
      const seen = new Set<string>();
      value.forEach((item, i) => {
        const k = keyOf(item);
        if (seen.has(k)) errors.push({ field: `${at}[${i}]`, reason: 'FieldValueDuplicate', detail: `Duplicate value: ${k}` });
        seen.add(k);
      });
    }
    if (s.items) value.forEach((item, i) => validateNode(item, s.items as JSONSchemaProps, `${path}[${i}]`, errors));
  }
  if (isObj(value)) {
    const n = Object.keys(value).length;
    if (s.minProperties !== undefined && n < s.minProperties) errors.push(fieldInvalid(at, n, `${body} should have at least ${s.minProperties} properties`));
    if (s.maxProperties !== undefined && n > s.maxProperties) errors.push(fieldInvalid(at, n, `${body} should have at most ${s.maxProperties} properties`));
    for (const r of s.required ?? []) {
      if (!(r in value)) errors.push(fieldRequired(path ? `${at}.${r}` : r));
    }
    for (const [k, v] of Object.entries(value)) {
      const ps = s.properties?.[k] ?? (isObj(s.additionalProperties) ? s.additionalProperties as JSONSchemaProps : undefined);
      if (ps) validateNode(v, ps, s.properties?.[k] ? `${path}.${k}` : `${path}[${k}]`, errors);
    }
  }
  for (const sub of s.allOf ?? []) validateNode(value, sub, path, errors);
  if (s.anyOf && !s.anyOf.some((sub) => { const e: FieldError[] = []; validateNode(value, sub, path, e); return e.length === 0; })) {
    errors.push(fieldInvalid(at, value, `${body} must validate at least one schema (anyOf)`));
  }
  if (s.oneOf && s.oneOf.filter((sub) => { const e: FieldError[] = []; validateNode(value, sub, path, e); return e.length === 0; }).length !== 1) {
    errors.push(fieldInvalid(at, value, `${body} must validate one and only one schema (oneOf)`));
  }
}

/** Used by the CRD validator: a default must itself be valid against its schema. */
export function validateValue(value: unknown, s: JSONSchemaProps, path: string): FieldError[] {
  const errors: FieldError[] = [];
  validateNode(value, s, path, errors);
  return errors;
}

