import { QueueError } from './errors.ts';

/** What a redrive is asked to do: how many, how fast, which dead letters. */
export interface RedriveRequest {
  /** Most dead letters to move back (0 = every one present when the redrive starts). */
  readonly max: number;
  /** Pace: dead letters moved back per second at most. */
  readonly perSecond: number;
  /** Only dead letters whose `error` starts with this (e.g. `http 5`, `timeout`); '' = any. */
  readonly error: string;
  /** Only dead letters with this `cause` (`permanent` or `exhausted`); '' = any. */
  readonly cause: string;
}

export const DEFAULT_REDRIVE_PER_SECOND = 100;
export const MAX_REDRIVE_PER_SECOND = 10_000;

/**
 * Reads the body of `POST …/dead-letters:redrive` (JSON; empty means defaults). Pure: every field
 * is checked with its name in the error, and unknown fields are refused rather than ignored, so a
 * misspelt filter never redrives everything.
 */
export function parseRedriveRequest(body: Buffer): RedriveRequest {
  let doc: unknown = {};
  if (body.length > 0) {
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch {
      throw bad('the body must be JSON, e.g. {"max": 100, "perSecond": 50, "error": "http 5"}');
    }
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad('the body must be a JSON object');
  const o = doc as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['max', 'perSecond', 'error', 'cause'].includes(k)) throw bad(`unknown field "${k}" (known: max, perSecond, error, cause)`);
  const max = integer(o.max, 'max', 0, 0, Number.MAX_SAFE_INTEGER);
  const perSecond = integer(o.perSecond, 'perSecond', DEFAULT_REDRIVE_PER_SECOND, 1, MAX_REDRIVE_PER_SECOND);
  const error = text(o.error, 'error');
  const cause = text(o.cause, 'cause');
  if (cause !== '' && cause !== 'permanent' && cause !== 'exhausted') throw bad('cause must be "permanent" or "exhausted"');
  return { max, perSecond, error, cause };
}

function integer(v: unknown, name: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(`${name} must be an integer from ${min} to ${max}`);
  return v;
}

function text(v: unknown, name: string): string {
  if (v === undefined) return '';
  if (typeof v !== 'string' || v.length > 200) throw bad(`${name} must be a string of at most 200 characters`);
  return v;
}

function bad(message: string): QueueError {
  return new QueueError('SLUICE_ERR_QUEUE_BAD_TASK', `redrive: ${message}`);
}
