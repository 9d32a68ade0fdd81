/**
 * The kubectl path of a dead-letter redrive: `kubectl annotate taskqueue orders
 * sluice.dev/redrive='{"max": 500, "perSecond": 50, "error": "http 5"}'`. Pure: from the
 * annotation and what status.redrive already says, decide whether to start a redrive (hand it to a
 * worker sidecar), follow the one started, or refuse the annotation. A value is acted on once — the status keeps a hash of the
 * object's uid and the value, so resyncs and operator restarts never start it twice; to redrive
 * again, change the value (any field, or an extra space).
 */
import { createHash } from 'node:crypto';
import { checkRedriveRequest, type RedriveProgress, type RedriveRequest } from '../../../lib/redis/dead-letter-redrive.ts';

export const REDRIVE_ANNOTATION = 'sluice.dev/redrive';

/** status.redrive of a TaskQueue. */
export interface RedriveStatus {
  /** Which annotation value this is about (a hash of the object's uid and the value). */
  readonly request: string;
  readonly id?: string;
  /** Pending (handed to a worker, not started yet), running, done, or Invalid. */
  readonly state?: string;
  readonly moved?: number;
  readonly skipped?: number;
  readonly startedAt?: string;
  readonly finishedAt?: string;
  /** The worker sidecar moving it now. */
  readonly owner?: string;
  readonly message?: string;
}

export type RedriveStep =
  | { readonly action: 'none' }
  | { readonly action: 'refuse'; readonly status: RedriveStatus }
  | { readonly action: 'start'; readonly requestHash: string; readonly id: string; readonly request: RedriveRequest }
  | { readonly action: 'follow'; readonly requestHash: string; readonly id: string };

export function planRedrive(uid: string, annotation: string | undefined, hasDeadLetter: boolean, before: RedriveStatus | undefined): RedriveStep {
  if (annotation !== undefined) {
    const requestHash = createHash('sha256').update(`${uid}\n${annotation}`).digest('hex').slice(0, 16);
    // A new value, or one handed to a worker that has not started it yet.
    if (before?.request !== requestHash || before.state === 'Pending') {
      const refuse = (message: string): RedriveStep => ({ action: 'refuse', status: { request: requestHash, state: 'Invalid', message: `${REDRIVE_ANNOTATION}: ${message}` } });
      if (!hasDeadLetter) return refuse('the queue has no spec.deadLetter.stream, so there is nothing to redrive');
      let doc: unknown;
      try {
        doc = annotation.trim() === '' ? {} : JSON.parse(annotation);
      } catch {
        return refuse('is not JSON; write e.g. {"max": 100, "perSecond": 50, "error": "http 5"} ({} for every dead letter)');
      }
      const request = checkRedriveRequest(doc);
      if (typeof request === 'string') return refuse(request);
      return { action: 'start', requestHash, id: redriveId(requestHash), request };
    }
  }
  if (before?.request && before.state === 'running') return { action: 'follow', requestHash: before.request, id: redriveId(before.request) };
  return { action: 'none' };
}

/** The id the redrive started from an annotation carries in Redis (and in the local API's answers). */
export function redriveId(requestHash: string): string {
  return `kubectl-${requestHash}`;
}

export function redriveStatus(requestHash: string, p: RedriveProgress): RedriveStatus {
  return {
    request: requestHash, id: p.id, state: p.state, moved: p.moved, skipped: p.skipped, startedAt: p.startedAt, owner: p.owner,
    ...(p.finishedAt ? { finishedAt: p.finishedAt } : {}),
  };
}
