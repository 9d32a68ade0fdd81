/**
 * Starting and reading a queue's dead-letter redrive. The sidecar (`POST …/dead-letters:redrive`)
 * and the operator (the `sluice.dev/redrive` annotation) both start one here; worker sidecars move
 * it forward (sidecar/src/queue/dead-letter-redrive.ts). The state is one hash per queue
 * (`queueKeys(q).redrive`), in the queue's slot.
 */
import type { Redis } from 'ioredis';
import { queueKeys, type QueueIdentity } from './key-layout.ts';

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
 * Checks a redrive request as a JSON value (a request body, an annotation). Pure; returns the
 * request or a message naming the field. Unknown fields are refused rather than ignored, so a
 * misspelt filter never redrives everything.
 */
export function checkRedriveRequest(doc: unknown): RedriveRequest | string {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return 'must be a JSON object, e.g. {"max": 100, "perSecond": 50, "error": "http 5"}';
  const o = doc as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['max', 'perSecond', 'error', 'cause'].includes(k)) return `unknown field "${k}" (known: max, perSecond, error, cause)`;
  const max = integer(o.max, 0, 0, Number.MAX_SAFE_INTEGER);
  if (max === undefined) return `max must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}`;
  const perSecond = integer(o.perSecond, DEFAULT_REDRIVE_PER_SECOND, 1, MAX_REDRIVE_PER_SECOND);
  if (perSecond === undefined) return `perSecond must be an integer from 1 to ${MAX_REDRIVE_PER_SECOND}`;
  const error = text(o.error);
  if (error === undefined) return 'error must be a string of at most 200 characters';
  const cause = text(o.cause);
  if (cause !== '' && cause !== 'permanent' && cause !== 'exhausted') return 'cause must be "permanent" or "exhausted"';
  return { max, perSecond, error, cause };
}

function integer(v: unknown, dflt: number, min: number, max: number): number | undefined {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) return undefined;
  return v;
}

function text(v: unknown): string | undefined {
  if (v === undefined) return '';
  if (typeof v !== 'string' || v.length > 200) return undefined;
  return v;
}

/** A redrive as the local API and the TaskQueue status show it. */
export interface RedriveProgress {
  readonly id: string;
  /** running, or done (every dead letter it covered was looked at, or `max` was reached). */
  readonly state: string;
  readonly moved: number;
  /** Dead letters looked at and left in place because the filter did not match them. */
  readonly skipped: number;
  readonly max: number;
  readonly perSecond: number;
  readonly error: string;
  readonly cause: string;
  readonly startedAt: string;
  readonly finishedAt: string | undefined;
  /** The sidecar moving it now ('' between owners). */
  readonly owner: string;
}

/**
 * Starts a dead-letter redrive unless one is running. KEYS: dead-letter stream, redrive hash.
 * ARGV: id, max (0 = all), perSecond, error prefix ('' = any), cause ('' = any), wall-clock ISO
 * time. The redrive covers the dead letters present now — up to the newest id, kept as `end` — so
 * tasks that fail again while it runs are not redriven in a loop. Returns the hash as a flat list,
 * and 1 if this call started it, 0 if another redrive was already running.
 */
const REDRIVE_START = `
local state = redis.call('HGET', KEYS[2], 'state')
if state == 'running' then return {redis.call('HGETALL', KEYS[2]), 0} end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local finish, st = '0-0', 'done'
if last[1] then finish, st = last[1][1], 'running' end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'state', st, 'cursor', '0-0', 'end', finish, 'moved', 0, 'skipped', 0,
  'max', ARGV[2], 'perSecond', ARGV[3], 'error', ARGV[4], 'cause', ARGV[5], 'startedAt', ARGV[6], 'owner', '', 'lease', 0)
if st == 'done' then redis.call('HSET', KEYS[2], 'finishedAt', ARGV[6]) end
return {redis.call('HGETALL', KEYS[2]), 1}`;

/**
 * Records a new redrive in the queue's redrive hash; a worker sidecar of the queue then moves it.
 * `started` is false when another redrive of the queue is running: `progress` is that one's.
 * The queue must have a dead-letter stream.
 */
export async function startRedrive(client: Redis, queue: QueueIdentity, req: RedriveRequest, id: string, wallNow: number): Promise<{ started: boolean; progress: RedriveProgress }> {
  const keys = queueKeys(queue);
  if (keys.deadLetter === undefined) throw new Error('the queue has no dead-letter stream');
  const [flat, started] = (await client.eval(REDRIVE_START, 2, keys.deadLetter, keys.redrive, id, req.max, req.perSecond, req.error, req.cause, new Date(wallNow).toISOString())) as [string[], number];
  return { started: started === 1, progress: toProgress(flat) };
}

/** The queue's latest redrive, or undefined when it never had one. */
export async function readRedrive(client: Redis, queue: QueueIdentity): Promise<RedriveProgress | undefined> {
  const flat = (await client.call('HGETALL', queueKeys(queue).redrive)) as string[];
  return flat.length === 0 ? undefined : toProgress(flat);
}

function toProgress(flat: readonly string[]): RedriveProgress {
  const h: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i] as string] = flat[i + 1] as string;
  return {
    id: h.id ?? '',
    state: h.state ?? 'idle',
    moved: Number(h.moved ?? 0),
    skipped: Number(h.skipped ?? 0),
    max: Number(h.max ?? 0),
    perSecond: Number(h.perSecond ?? 0),
    error: h.error ?? '',
    cause: h.cause ?? '',
    startedAt: h.startedAt ?? '',
    finishedAt: h.finishedAt,
    owner: h.owner ?? '',
  };
}
