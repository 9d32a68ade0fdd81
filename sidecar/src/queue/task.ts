import { streamIdTime } from './stream-id.ts';

/**
 * A task as it sits in a stream entry. Field names are one letter because a busy queue holds
 * millions of entries; most carry only `p`.
 *   p  payload bytes (as the producer posted them)
 *   c  content type, when not application/json
 *   i  the task id, when it differs from the entry id (a retry, a delayed or released task)
 *   a  the attempt this entry is delivered as, when not 1
 *   e  why the previous attempt failed (informational)
 *   k  the ordering key, when the producer gave one
 */
export const FIELD = { payload: 'p', contentType: 'c', id: 'i', attempt: 'a', error: 'e', orderingKey: 'k' } as const;
export const DEFAULT_CONTENT_TYPE = 'application/json';

export interface Task {
  /** The stream entry that holds the task now; what XACK and XCLAIM name. */
  readonly entryId: string;
  /** Stable across retries and reclaims: the id the producer got back, the app's idempotency key. */
  readonly id: string;
  /** 1 for the first delivery; grows with every retry and every reclaim from a dead consumer. */
  readonly attempt: number;
  readonly payload: Buffer;
  readonly contentType: string;
  /** Wall-clock ms (Redis's clock) at which the entry was appended, i.e. became deliverable. */
  readonly availableAt: number;
  readonly lastError: string | undefined;
  /** Tasks of one key are delivered one at a time, in order (see scripts.ts, ORDER). */
  readonly orderingKey?: string | undefined;
}

/**
 * Reads an entry returned by XREADGROUP / XAUTOCLAIM. `deliveries` is the group's delivery count
 * for the entry (1 on a fresh read); a reclaim after a crash raises it, and so the attempt.
 */
export function decodeEntry(entryId: string, fields: readonly Buffer[], deliveries = 1): Task {
  let payload: Buffer = EMPTY;
  let contentType = DEFAULT_CONTENT_TYPE;
  let id = entryId;
  let base = 1;
  let lastError: string | undefined;
  let orderingKey: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = (fields[i] as Buffer).toString('latin1');
    const value = fields[i + 1] as Buffer;
    if (name === FIELD.payload) payload = value;
    else if (name === FIELD.contentType) contentType = value.toString('latin1');
    else if (name === FIELD.id) id = value.toString('latin1');
    else if (name === FIELD.attempt) base = Number(value.toString('latin1')) || 1;
    else if (name === FIELD.error) lastError = value.toString('utf8');
    else if (name === FIELD.orderingKey) orderingKey = value.toString('latin1');
  }
  return { entryId, id, attempt: base + Math.max(0, deliveries - 1), payload, contentType, availableAt: streamIdTime(entryId), lastError, orderingKey };
}

/** The fields of a new entry carrying `task` again, as attempt `attempt`. */
export function encodeFields(task: Pick<Task, 'id' | 'payload' | 'contentType' | 'orderingKey'>, attempt: number, error?: string): (string | Buffer)[] {
  const out: (string | Buffer)[] = [FIELD.payload, task.payload, FIELD.id, task.id];
  if (task.contentType !== DEFAULT_CONTENT_TYPE) out.push(FIELD.contentType, task.contentType);
  if (task.orderingKey !== undefined) out.push(FIELD.orderingKey, task.orderingKey);
  if (attempt !== 1) out.push(FIELD.attempt, String(attempt));
  if (error !== undefined) out.push(FIELD.error, error);
  return out;
}

const EMPTY = Buffer.alloc(0);
