import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody, sendJson, type Route } from '../local-api/router.ts';
import { parseBatch, parseSingleTask, MAX_BATCH } from './enqueue-request.ts';
import { QueueError } from './errors.ts';
import type { TaskQueuePlan } from '../../../lib/policy/plan.ts';
import type { QueueStats } from '../../../lib/redis/queue-stats.ts';
import type { RedriveProgress, RedriveRequest } from '../../../lib/redis/dead-letter-redrive.ts';
import type { Enqueued, NewTask } from './producer.ts';
import { parseRedriveRequest } from './redrive-request.ts';

/**
 * What the routes ask of the queues (the QueueFeature serves them). Declared here so that the
 * routes depend on what they use, and the feature on its routes, not each on the other.
 */
export interface QueueApi {
  /** The producible TaskQueue named so (a QueueError when none, or ambiguous without a namespace). */
  resolve(name: string, namespace?: string): TaskQueuePlan;
  enqueue(queue: TaskQueuePlan, tasks: readonly NewTask[]): Promise<Enqueued[]>;
  stats(queue: TaskQueuePlan): Promise<QueueStats>;
  redrive(queue: TaskQueuePlan, req: RedriveRequest): Promise<RedriveProgress>;
  redriveProgress(queue: TaskQueuePlan): Promise<RedriveProgress | undefined>;
  readonly maxTaskBytes: number;
  readonly wallNow: number;
}

/**
 * The queue's part of the local API (`--local-api`, for the app beside the sidecar):
 *   POST /v1/queues/{name}/tasks        one task; the body is the payload  → 202 {id, duplicate}
 *   POST /v1/queues/{name}/tasks:batch  {"tasks": [...]}                   → 202 {tasks: [{id, duplicate}]}
 *   GET  /v1/queues/{name}              length, pending, lag, delayed, dead letters, consumers
 *   POST /v1/queues/{name}/dead-letters:redrive  {max?, perSecond?, error?, cause?} → 202 the redrive
 *   GET  /v1/queues/{name}/dead-letters:redrive  the latest redrive's progress (404 when none)
 * `{name}` is the TaskQueue's metadata.name; `?namespace=` picks one when the name is in several.
 */
export function queueRoutes(feature: QueueApi): Route[] {
  return [
    {
      method: 'POST',
      pattern: '/v1/queues/:name/tasks',
      handler: guarded(async (req, res, params) => {
        const queue = feature.resolve(params.name as string, namespaceOf(req));
        const body = await read(req, feature.maxTaskBytes);
        const task = parseSingleTask({ headers: req.headers, query: queryOf(req), body }, feature.wallNow);
        if (isJson(task.contentType)) checkJson(body);
        const [e] = await feature.enqueue(queue, [task]);
        sendJson(res, 202, { id: e?.id, duplicate: e?.duplicate ?? false });
      }),
    },
    {
      method: 'POST',
      pattern: '/v1/queues/:name/tasks:batch',
      handler: guarded(async (req, res, params) => {
        const queue = feature.resolve(params.name as string, namespaceOf(req));
        const body = await read(req, Math.max(feature.maxTaskBytes * 16, MAX_BATCH * 1024));
        const tasks = parseBatch(body, feature.wallNow, feature.maxTaskBytes);
        const out = await feature.enqueue(queue, tasks);
        sendJson(res, 202, { tasks: out });
      }),
    },
    {
      method: 'POST',
      pattern: '/v1/queues/:name/dead-letters:redrive',
      handler: guarded(async (req, res, params) => {
        const queue = feature.resolve(params.name as string, namespaceOf(req));
        const body = await read(req, 4096);
        sendJson(res, 202, await feature.redrive(queue, parseRedriveRequest(body)));
      }),
    },
    {
      method: 'GET',
      pattern: '/v1/queues/:name/dead-letters:redrive',
      handler: guarded(async (req, res, params) => {
        const queue = feature.resolve(params.name as string, namespaceOf(req));
        const progress = await feature.redriveProgress(queue);
        if (progress === undefined) sendJson(res, 404, { error: `${queue.id} has never been redriven`, code: 'SLUICE_ERR_NOT_FOUND' });
        else sendJson(res, 200, progress);
      }),
    },
    {
      method: 'GET',
      pattern: '/v1/queues/:name',
      handler: guarded(async (req, res, params) => {
        const queue = feature.resolve(params.name as string, namespaceOf(req));
        sendJson(res, 200, await feature.stats(queue));
      }),
    },
  ];
}

type Handler = (req: IncomingMessage, res: ServerResponse, params: Record<string, string>) => Promise<void>;

/** Failures become `{error, code}` with the status the code maps to; unknown ones are 500s. */
function guarded(handler: Handler): Handler {
  return async (req, res, params) => {
    try {
      await handler(req, res, params);
    } catch (err) {
      if (res.headersSent) return;
      if (err instanceof QueueError) {
        const progress = (err as { progress?: unknown }).progress;
        sendJson(res, err.httpStatus, { error: err.message, code: err.code, ...(progress === undefined ? {} : { redrive: progress }) }, err.code === 'SLUICE_ERR_QUEUE_UNAVAILABLE' ? { 'retry-after': '1' } : {});
      } else {
        sendJson(res, 500, { error: (err as Error).message, code: 'SLUICE_ERR_INTERNAL' });
      }
    }
  };
}

async function read(req: IncomingMessage, limit: number): Promise<Buffer> {
  // Refused before reading when the size is announced, so the client gets a 413 and not a reset.
  if (Number(req.headers['content-length'] ?? 0) > limit) throw new QueueError('SLUICE_ERR_QUEUE_TOO_LARGE', `a task body is limited to ${limit} bytes`);
  try {
    return await readBody(req, limit);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'SLUICE_ERR_BODY_TOO_LARGE') throw new QueueError('SLUICE_ERR_QUEUE_TOO_LARGE', `a task body is limited to ${limit} bytes`);
    throw err;
  }
}

function queryOf(req: IncomingMessage): URLSearchParams {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
}

function namespaceOf(req: IncomingMessage): string | undefined {
  return queryOf(req).get('namespace') ?? undefined;
}

function isJson(contentType: string): boolean {
  return /^application\/(.+\+)?json\b/i.test(contentType);
}

/** JSON payloads are embedded verbatim in batch deliveries, so they must be valid JSON. */
function checkJson(body: Buffer): void {
  try {
    JSON.parse(body.toString('utf8'));
  } catch {
    throw new QueueError('SLUICE_ERR_QUEUE_BAD_TASK', 'the body says application/json but is not valid JSON');
  }
}
