import { checkRedriveRequest, type RedriveRequest } from '../../../lib/redis/dead-letter-redrive.ts';
import { QueueError } from './errors.ts';

/**
 * Reads the body of `POST …/dead-letters:redrive` (JSON; empty means defaults), checked by the
 * same rules as the TaskQueue's `sluice.dev/redrive` annotation.
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
  const req = checkRedriveRequest(doc);
  if (typeof req === 'string') throw bad(`the body ${req}`);
  return req;
}

function bad(message: string): QueueError {
  return new QueueError('SLUICE_ERR_QUEUE_BAD_TASK', `redrive: ${message}`);
}
