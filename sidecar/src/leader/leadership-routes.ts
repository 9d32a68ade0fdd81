import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseDuration } from '../../../lib/policy/duration.ts';
import { readBody, sendJson, type Route } from '../local-api/router.ts';
import type { AppLocks } from './app-locks.ts';
import { LockError, httpStatusOf } from './errors.ts';
import { HOLD_LIMITS, LockHold, type HoldEvent } from './lock-hold.ts';
import type { Clock } from '../../../lib/clock.ts';
import type { LeaderElector, LeadershipStatus } from './leader-elector.ts';

/** What the routes need from the feature; kept narrow so they can be read on their own. */
export interface LeadershipApi {
  electors(): readonly LeaderElector[];
  elector(name: string): LeaderElector | undefined;
  appLocks(): AppLocks;
  /** Ends every open watch stream and hold (shutdown); returns the unsubscribe function. */
  onClose(listener: () => void): () => void;
  clock: Clock;
}

/**
 * The app's view of leadership and locks on the local API (`--local-api`):
 *   GET    /v1/leadership                   every election of this pod
 *   GET    /v1/leadership/{name}            {leader, holder, fencingToken, validUntil}
 *   GET    /v1/leadership/{name}/watch      the same, as Server-Sent Events, on every change
 *   POST   /v1/locks/{resource}             {ttl, wait?} → {lockId, fencingToken, validUntil}
 *   POST   /v1/locks/{resource}/extend      {lockId, ttl?}
 *   POST   /v1/locks/{resource}/release     {lockId}   (also DELETE /v1/locks/{resource}?lockId=)
 *   POST   /v1/locks/{resource}/hold?ttl=&wait=&heartbeat=&maxHold=
 *          takes the lock and keeps it while the call stays open and the app writes a line on the
 *          request body at least every `heartbeat`; answers NDJSON events (acquired, renewed, lost,
 *          released). Ending the request body releases it.
 * Durations are milliseconds or strings as in the API ("10s"). Failures carry a stable `code`.
 */
export function leadershipRoutes(api: LeadershipApi): Route[] {
  const electorOr404 = (name: string): LeaderElector => {
    const e = api.elector(name);
    if (e === undefined) throw new LockError('SLUICE_ERR_ELECTION_NOT_FOUND', `no LeaderElection ${name} applies to this pod`);
    return e;
  };
  return [
    { method: 'GET', pattern: '/v1/leadership', handler: guarded(async (_req, res) => sendJson(res, 200, { elections: api.electors().map((e) => e.status()) })) },
    { method: 'GET', pattern: '/v1/leadership/:name', handler: guarded(async (_req, res, p) => sendJson(res, 200, electorOr404(p.name as string).status())) },
    { method: 'GET', pattern: '/v1/leadership/:name/watch', handler: guarded(async (req, res, p) => watch(req, res, electorOr404(p.name as string), api)) },
    {
      method: 'POST', pattern: '/v1/locks/:resource', handler: guarded(async (req, res, p) => {
        const body = await jsonBody(req);
        const view = await api.appLocks().acquire(p.resource as string, durationField(body, 'ttl', 10_000), durationField(body, 'wait', 0));
        sendJson(res, 200, view);
      }),
    },
    { method: 'POST', pattern: '/v1/locks/:resource/hold', longLived: true, handler: guarded(async (req, res, p) => hold(req, res, p.resource as string, api)) },
    {
      method: 'POST', pattern: '/v1/locks/:resource/extend', handler: guarded(async (req, res, p) => {
        const body = await jsonBody(req);
        const ttl = body.ttl === undefined ? undefined : durationField(body, 'ttl', 0);
        sendJson(res, 200, await api.appLocks().extend(p.resource as string, String(body.lockId ?? ''), ttl));
      }),
    },
    {
      method: 'POST', pattern: '/v1/locks/:resource/release', handler: guarded(async (req, res, p) => {
        const body = await jsonBody(req);
        await api.appLocks().release(p.resource as string, String(body.lockId ?? ''));
        sendJson(res, 200, { released: true });
      }),
    },
    {
      method: 'DELETE', pattern: '/v1/locks/:resource', handler: guarded(async (req, res, p) => {
        const query = new URL(req.url ?? '/', 'http://local').searchParams.get('lockId');
        const lockId = query ?? String((await jsonBody(req)).lockId ?? '');
        await api.appLocks().release(p.resource as string, lockId);
        sendJson(res, 200, { released: true });
      }),
    },
  ];
}

function watch(req: IncomingMessage, res: ServerResponse, elector: LeaderElector, api: LeadershipApi): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
  const send = (s: LeadershipStatus) => res.write(`event: leadership\ndata: ${JSON.stringify(s)}\n\n`);
  send(elector.status());
  const off = elector.onChange(send);
  // A comment line now and then keeps proxies and idle timeouts from closing a quiet stream.
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  keepAlive.unref();
  const end = () => {
    off();
    clearInterval(keepAlive);
    res.end();
  };
  req.on('close', end);
  api.onClose(end);
}

/**
 * The hold call: the lock is taken before anything is answered (a refusal is the plain take's JSON
 * error), then the answer streams one JSON event per line while the request body carries the app's
 * heartbeats. Heartbeat bytes are counted, never kept: memory stays bounded however long it runs.
 */
async function hold(req: IncomingMessage, res: ServerResponse, resource: string, api: LeadershipApi): Promise<void> {
  const q = new URL(req.url ?? '/', 'http://local').searchParams;
  const param = (name: string, fallback: number) => durationField({ [name]: q.get(name) ?? undefined }, name, fallback);
  const h = new LockHold({
    locks: api.appLocks(),
    resource,
    clock: api.clock,
    hold: {
      ttlMs: param('ttl', 10_000),
      waitMs: param('wait', 0),
      heartbeatMs: param('heartbeat', HOLD_LIMITS.heartbeatMs.default),
      maxHoldMs: param('maxHold', HOLD_LIMITS.maxHoldMs.default),
    },
    emit: (e: HoldEvent) => {
      if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
      if (!res.writableEnded) res.write(`${JSON.stringify(e)}\n`);
    },
  });
  req.on('data', () => h.heartbeat());
  // The app ended its side of the call: it is done with the lock.
  req.on('end', () => void h.end('done'));
  // The app went away (crashed, killed, closed the connection): let go at once.
  res.on('close', () => void h.end('client-gone'));
  const off = api.onClose(() => void h.end('shutdown'));
  try {
    await h.start();
    await h.done;
  } finally {
    off();
  }
  if (!res.writableEnded) res.end();
}

type Handler = Route['handler'];

/** Maps LockError codes to statuses in one place; anything else is the router's 500. */
function guarded(handler: Handler): Handler {
  return async (req, res, params) => {
    try {
      await handler(req, res, params);
    } catch (err) {
      if (!(err instanceof LockError)) throw err;
      sendJson(res, httpStatusOf(err.code), { error: err.message, code: err.code, ...err.details });
    }
  };
}

async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const raw = await readBody(req, 64 * 1024);
  if (raw.length === 0) return {};
  try {
    const v: unknown = JSON.parse(raw.toString('utf8'));
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new LockError('SLUICE_ERR_LOCK_BAD_REQUEST', 'the body must be a JSON object');
}

function durationField(body: Record<string, unknown>, field: string, fallback: number): number {
  const v = body[field];
  if (v === undefined) return fallback;
  const ms = typeof v === 'number' ? v : typeof v === 'string' ? parseDuration(v) : undefined;
  if (ms === undefined || !Number.isFinite(ms)) throw new LockError('SLUICE_ERR_LOCK_BAD_REQUEST', `${field} must be milliseconds or a duration like "10s"`);
  return ms;
}
