import { parseDuration } from './duration.ts';
import type { Issue } from './errors.ts';

type Obj = Record<string, unknown>;

/**
 * Reads untrusted, already-parsed YAML/JSON and records every issue with its field path instead
 * of stopping at the first, so one rejection tells the author everything that is wrong.
 */
export class Checker {
  readonly issues: Issue[] = [];
  /** Unknown fields seen in `tolerateUnknownFields` mode: reported, not refused. */
  readonly warnings: Issue[] = [];
  private readonly tolerateUnknownFields: boolean;

  /**
   * `tolerateUnknownFields`: for documents from a newer operator, whose CRDs may carry optional
   * fields this version does not know (see lib/policy/skew.ts); a person's file stays strict.
   */
  constructor({ tolerateUnknownFields = false }: { tolerateUnknownFields?: boolean } = {}) {
    this.tolerateUnknownFields = tolerateUnknownFields;
  }

  fail(path: string, message: string): undefined {
    this.issues.push({ path, message });
    return undefined;
  }

  object(v: unknown, path: string, required = false): Obj | undefined {
    if (v === undefined || v === null) return required ? this.fail(path, 'is required') : undefined;
    if (typeof v !== 'object' || Array.isArray(v)) return this.fail(path, `must be an object (got ${describe(v)})`);
    return v as Obj;
  }

  /** Flags fields the API does not have — most often a typo that would otherwise be ignored. */
  known(o: Obj | undefined, path: string, fields: readonly string[]): void {
    if (!o) return;
    for (const k of Object.keys(o)) {
      if (fields.includes(k)) continue;
      if (this.tolerateUnknownFields) this.warnings.push({ path: join(path, k), message: 'unknown field, ignored (from a newer operator?)' });
      else this.fail(join(path, k), `unknown field (expected one of: ${fields.join(', ')})`);
    }
  }

  list(v: unknown, path: string, { required = false, minItems = 0 } = {}): unknown[] | undefined {
    if (v === undefined || v === null) return required ? this.fail(path, 'is required') : undefined;
    if (!Array.isArray(v)) return this.fail(path, `must be a list (got ${describe(v)})`);
    if (v.length < minItems) return this.fail(path, `must have at least ${minItems} item(s)`);
    return v;
  }

  string(
    v: unknown,
    path: string,
    { required = false, pattern, oneOf, maxLength = 1024 }: { required?: boolean; pattern?: RegExp; oneOf?: readonly string[]; maxLength?: number } = {},
  ): string | undefined {
    if (v === undefined || v === null) return required ? this.fail(path, 'is required') : undefined;
    if (typeof v !== 'string') return this.fail(path, `must be a string (got ${describe(v)})`);
    if (oneOf && !oneOf.includes(v)) return this.fail(path, `must be one of ${oneOf.join(', ')} (got "${v}")`);
    if (v.length > maxLength) return this.fail(path, `must be at most ${maxLength} characters`);
    if (pattern && !pattern.test(v)) return this.fail(path, `"${v}" does not match ${pattern.source}`);
    return v;
  }

  integer(v: unknown, path: string, { required = false, min = 0, max = Number.MAX_SAFE_INTEGER } = {}): number | undefined {
    if (v === undefined || v === null) return required ? this.fail(path, 'is required') : undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) return this.fail(path, `must be an integer (got ${describe(v)})`);
    if (v < min) return this.fail(path, `must be at least ${min} (got ${v})`);
    if (v > max) return this.fail(path, `must be at most ${max} (got ${v})`);
    return v;
  }

  number(v: unknown, path: string, { required = false, min = -Infinity, max = Infinity } = {}): number | undefined {
    if (v === undefined || v === null) return required ? this.fail(path, 'is required') : undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) return this.fail(path, `must be a number (got ${describe(v)})`);
    if (v < min) return this.fail(path, `must be at least ${min} (got ${v})`);
    if (v > max) return this.fail(path, `must be at most ${max} (got ${v})`);
    return v;
  }

  boolean(v: unknown, path: string): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') return this.fail(path, `must be true or false (got ${describe(v)})`);
    return v;
  }

  /** A duration string, returned in milliseconds. */
  duration(v: unknown, path: string, { required = false, minMs = 1, maxMs = Infinity } = {}): number | undefined {
    if (v === undefined || v === null) return required ? this.fail(path, 'is required') : undefined;
    if (typeof v !== 'string') return this.fail(path, `must be a duration string such as "500ms", "1s", "1m" (got ${describe(v)})`);
    const ms = parseDuration(v);
    if (ms === undefined) return this.fail(path, `"${v}" is not a duration (use e.g. "500ms", "1s", "1m", "1h")`);
    if (ms < minMs) return this.fail(path, `must be at least ${minMs}ms (got "${v}")`);
    if (ms > maxMs) return this.fail(path, `must be at most ${maxMs}ms (got "${v}")`);
    return ms;
  }

  regex(v: string | undefined, path: string): RegExp | undefined {
    if (v === undefined) return undefined;
    try {
      return new RegExp(v);
    } catch (err) {
      return this.fail(path, `is not a valid regular expression: ${(err as Error).message}`);
    }
  }
}

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'string') return `"${v.length > 40 ? `${v.slice(0, 40)}…` : v}"`;
  if (typeof v === 'object') return 'an object';
  return String(v);
}
