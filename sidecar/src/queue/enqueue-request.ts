import { parseDuration } from '../../../lib/policy/index.ts';
import { QueueError } from './errors.ts';
import type { NewTask } from './producer.ts';

/**
 * How a producer's HTTP request becomes tasks. Pure (headers, query and body in; tasks out) so
 * every accepted and refused form is a table test.
 *
 * Single form — `POST /v1/queues/{name}/tasks`: the body is the payload, kept byte for byte with
 * its `Content-Type`. Optional `Idempotency-Key`; `Sluice-Ordering-Key` (tasks of one key are
 * delivered one at a time, in order — see docs/task-queues.md); a delay as `Sluice-Delay: 30s` (or `?delay=`),
 * or a not-before time as `Sluice-Not-Before: <RFC 3339 | epoch ms>` (or `?notBefore=`).
 *
 * Batch form — `POST /v1/queues/{name}/tasks:batch` with
 * `{"tasks": [{"payload": <any JSON>} | {"body": "<text>", "contentType": "text/plain"},
 *              …optional "idempotencyKey", "orderingKey", "delay", "notBefore" per task]}`.
 */
export const MAX_BATCH = 1000;
export const MAX_IDEMPOTENCY_KEY = 256;
export const MAX_ORDERING_KEY = 256;
/** An ordering key is delivered back as a header: printable ASCII only. */
const ORDERING_KEY = /^[\x20-\x7e]+$/;
/**
 * The longest a task may wait in the delay set: a delay is Redis memory held until it is due, so
 * a typo ("9999h") or a not-before far in the future is refused rather than kept for years.
 */
export const MAX_DELAY_MS = 30 * 24 * 3_600_000;
/** A content type that can travel as a header value: type/subtype and parameters, printable ASCII. */
const CONTENT_TYPE = /^[\x21-\x7e][\x20-\x7e]{0,255}$/;

export interface RequestParts {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly query: URLSearchParams;
  readonly body: Buffer;
}

export function parseSingleTask(req: RequestParts, wallNow: number): NewTask {
  const header = (name: string) => {
    const v = req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const contentType = header('content-type') ?? 'application/octet-stream';
  return {
    payload: req.body,
    contentType,
    idempotencyKey: checkKey(header('idempotency-key')),
    orderingKey: checkOrderingKey(header('sluice-ordering-key'), 'Sluice-Ordering-Key'),
    delayMs: delayOf(header('sluice-delay') ?? req.query.get('delay') ?? undefined, header('sluice-not-before') ?? req.query.get('notBefore') ?? undefined, wallNow),
  };
}

/** `maxTaskBytes`: the largest payload one task of the batch may carry, as for the single form. */
export function parseBatch(body: Buffer, wallNow: number, maxTaskBytes = Infinity): NewTask[] {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw bad('the batch body is not JSON');
  }
  const tasks = (doc as { tasks?: unknown } | null)?.tasks;
  if (!Array.isArray(tasks) || tasks.length === 0) throw bad('the batch body must be {"tasks": [ … ]} with at least one task');
  if (tasks.length > MAX_BATCH) throw bad(`a batch holds at most ${MAX_BATCH} tasks`);
  return tasks.map((t: unknown, i) => {
    if (t === null || typeof t !== 'object' || Array.isArray(t)) throw bad(`tasks[${i}] must be an object`);
    const o = t as Record<string, unknown>;
    // Text stays a string: the Redis client writes strings far more cheaply than many Buffers.
    let payload: string;
    let contentType = 'application/json';
    if ('body' in o) {
      if (typeof o.body !== 'string') throw bad(`tasks[${i}].body must be a string`);
      payload = o.body;
      if (o.contentType !== undefined && (typeof o.contentType !== 'string' || !CONTENT_TYPE.test(o.contentType))) {
        // It becomes the delivery's Content-Type header: refuse what could not be sent as one.
        throw bad(`tasks[${i}].contentType must be a media type such as text/plain (printable ASCII, at most 256 characters)`);
      }
      contentType = o.contentType ?? 'text/plain';
    } else if ('payload' in o) {
      payload = JSON.stringify(o.payload);
    } else {
      throw bad(`tasks[${i}] needs "payload" (JSON) or "body" (text)`);
    }
    if (Buffer.byteLength(payload) > maxTaskBytes) throw bad(`tasks[${i}] is larger than ${maxTaskBytes} bytes, the largest task this sidecar accepts`);
    const key = o.idempotencyKey;
    if (key !== undefined && typeof key !== 'string') throw bad(`tasks[${i}].idempotencyKey must be a string`);
    const orderingKey = o.orderingKey;
    if (orderingKey !== undefined && typeof orderingKey !== 'string') throw bad(`tasks[${i}].orderingKey must be a string`);
    const delay = o.delay;
    const notBefore = o.notBefore;
    return {
      payload,
      contentType,
      idempotencyKey: checkKey(key),
      orderingKey: checkOrderingKey(orderingKey, `tasks[${i}].orderingKey`),
      delayMs: delayOf(delay === undefined ? undefined : String(delay), notBefore === undefined ? undefined : String(notBefore), wallNow),
    };
  });
}

function checkKey(key: string | undefined): string | undefined {
  if (key === undefined || key === '') return undefined;
  if (key.length > MAX_IDEMPOTENCY_KEY) throw bad(`Idempotency-Key is longer than ${MAX_IDEMPOTENCY_KEY} characters`);
  return key;
}

function checkOrderingKey(key: string | undefined, name: string): string | undefined {
  if (key === undefined || key === '') return undefined;
  if (key.length > MAX_ORDERING_KEY) throw bad(`${name} is longer than ${MAX_ORDERING_KEY} characters`);
  if (!ORDERING_KEY.test(key)) throw bad(`${name} must be printable ASCII (it is delivered back as a header)`);
  return key;
}

/** A delay is a duration ("30s") or whole milliseconds; not-before is RFC 3339 or epoch ms. At most MAX_DELAY_MS ahead. */
function delayOf(delay: string | undefined, notBefore: string | undefined, wallNow: number): number {
  const ms = rawDelayOf(delay, notBefore, wallNow);
  if (ms > MAX_DELAY_MS) throw bad(`a task may be delayed by at most ${MAX_DELAY_MS / 86_400_000} days`);
  return ms;
}

function rawDelayOf(delay: string | undefined, notBefore: string | undefined, wallNow: number): number {
  if (delay !== undefined && notBefore !== undefined) throw bad('give a delay or a not-before time, not both');
  if (delay !== undefined) {
    const ms = /^\d+$/.test(delay) ? Number(delay) : parseDuration(delay);
    if (ms === undefined) throw bad(`delay "${delay}" is not a duration such as 500ms, 30s, 5m`);
    return ms;
  }
  if (notBefore !== undefined) {
    const at = /^\d+$/.test(notBefore) ? Number(notBefore) : Date.parse(notBefore);
    if (Number.isNaN(at)) throw bad(`not-before "${notBefore}" is neither RFC 3339 nor epoch milliseconds`);
    return Math.max(0, at - wallNow);
  }
  return 0;
}

function bad(message: string): QueueError {
  return new QueueError('SLUICE_ERR_QUEUE_BAD_TASK', message);
}
