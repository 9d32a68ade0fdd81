import type { FencingRejection, Rejection } from './engine.ts';

/**
 * Errors are API: every rejection maps here, in one place, to what each protocol's clients
 * already understand — HTTP status and headers, gRPC status with retry pushback, WebSocket
 * close codes.
 */

/** Stable codes for rejections, logged and put in bodies so clients and tests can match on them. */
export const REJECTION_CODES = {
  rate_limited: 'SLUICE_ERR_RATE_LIMITED',
  circuit_open: 'SLUICE_ERR_CIRCUIT_OPEN',
  bulkhead_full: 'SLUICE_ERR_BULKHEAD_FULL',
  concurrency_limited: 'SLUICE_ERR_CONCURRENCY_LIMITED',
  priority_shed: 'SLUICE_ERR_PRIORITY_SHED',
  fencing_stale: 'SLUICE_ERR_FENCING_TOKEN_STALE',
  fencing_token_missing: 'SLUICE_ERR_FENCING_TOKEN_MISSING',
  fencing_token_malformed: 'SLUICE_ERR_FENCING_TOKEN_MALFORMED',
  fencing_unavailable: 'SLUICE_ERR_FENCING_UNAVAILABLE',
} as const;

/**
 * Fencing refusals per protocol. A stale token is a conflict with newer state (409; gRPC ABORTED,
 * the code for a failed sequencer check); a missing one a precondition the client must supply
 * (428; FAILED_PRECONDITION); a token that is not a number bad input (400; INVALID_ARGUMENT); lock
 * nodes that cannot decide, with failureMode Closed, a retryable outage (503; UNAVAILABLE).
 */
const FENCING = {
  fencing_stale: { status: 409, grpc: 'ABORTED', error: 'stale fencing token: a newer holder has already acted on this resource' },
  fencing_token_missing: { status: 428, grpc: 'FAILED_PRECONDITION', error: 'fencing token required' },
  fencing_token_malformed: { status: 400, grpc: 'INVALID_ARGUMENT', error: 'fencing token must be a decimal integer' },
  fencing_unavailable: { status: 503, grpc: 'UNAVAILABLE', error: 'fencing token could not be checked: no majority of lock nodes answered' },
} as const;

/**
 * Load shedding (an adaptive concurrency limit, or a priority level's share used up) tells the
 * client to come back later: 503 with Retry-After — 429 when a rate-limit rule shed by priority,
 * since that is still a rate limit — and gRPC RESOURCE_EXHAUSTED with retry pushback (not
 * UNAVAILABLE: the app is up, the sidecar is choosing not to load it further).
 */
const SHEDDING = {
  concurrency_limited: 'too many concurrent requests for the app\'s current latency',
  priority_shed: 'shed: the rest of the limit is kept for higher priorities',
} as const;

function isShedding(r: Rejection): r is Extract<Rejection, { reason: 'concurrency_limited' | 'priority_shed' }> {
  return r.reason in SHEDDING;
}

function fencingBody(r: FencingRejection): Record<string, unknown> {
  return {
    error: FENCING[r.reason].error,
    code: REJECTION_CODES[r.reason],
    rule: r.rule.id,
    resource: { kind: r.rule.resource.kind, name: r.rule.resource.name },
    token: r.rule.token.name,
    ...(r.token !== undefined ? { fencingToken: r.token } : {}),
    ...(r.newest !== undefined ? { newestFencingToken: r.newest } : {}),
  };
}

export function httpRejection(r: Rejection): { status: number; headers: Record<string, string>; body: string } {
  if (isFencing(r)) {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (r.reason === 'fencing_unavailable') headers['retry-after'] = String(Math.max(1, Math.ceil(r.retryAfterMs / 1000)));
    return { status: FENCING[r.reason].status, headers, body: JSON.stringify(fencingBody(r)) };
  }
  const retryAfter = String(Math.max(1, Math.ceil(r.retryAfterMs / 1000)));
  if (isShedding(r)) {
    const level = r.reason === 'priority_shed' ? { level: r.level } : {};
    return {
      status: r.reason === 'priority_shed' && !('failure' in r.rule) ? 429 : 503,
      headers: { 'retry-after': retryAfter, 'content-type': 'application/json' },
      body: JSON.stringify({ error: SHEDDING[r.reason], code: REJECTION_CODES[r.reason], rule: r.rule.id, ...level }),
    };
  }
  if (r.reason === 'rate_limited') {
    const d = r.decision;
    const windowSec = Math.max(1, Math.ceil((r.rule.limit?.perMs ?? 1000) / 1000));
    const name = sfString(r.rule.name);
    return {
      status: 429,
      headers: {
        'retry-after': retryAfter,
        // draft-ietf-httpapi-ratelimit-headers: the policy (quota q per window w) and the current
        // state (remaining r, seconds t until the quota is restored).
        'ratelimit-policy': `${name};q=${d.limit};w=${windowSec}`,
        ratelimit: `${name};r=${d.remaining};t=${Math.max(0, Math.ceil(d.resetMs / 1000))}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ error: 'rate limited', code: REJECTION_CODES.rate_limited, rule: r.rule.id }),
    };
  }
  return {
    status: 503,
    headers: { 'retry-after': retryAfter, 'content-type': 'application/json' },
    body: JSON.stringify({
      error: r.reason === 'circuit_open' ? 'circuit open' : 'too many concurrent requests',
      code: REJECTION_CODES[r.reason],
      rule: r.rule.id,
    }),
  };
}

export const GRPC_STATUS = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15, UNAUTHENTICATED: 16,
} as const;

/** Trailers-only gRPC answer for a rejection: RESOURCE_EXHAUSTED with pushback, or UNAVAILABLE. */
export function grpcRejection(r: Rejection): { code: number; message: string; headers: Record<string, string> } {
  if (isFencing(r)) {
    const f = FENCING[r.reason];
    const detail = r.reason === 'fencing_stale' ? ` (token ${r.token}, newest accepted ${r.newest})` : '';
    return {
      code: GRPC_STATUS[f.grpc],
      message: `${f.error}${detail}: ${r.rule.id} (${REJECTION_CODES[r.reason]})`,
      headers: r.reason === 'fencing_unavailable' ? { 'grpc-retry-pushback-ms': String(Math.max(1, Math.ceil(r.retryAfterMs))) } : {},
    };
  }
  if (isShedding(r)) {
    return {
      code: GRPC_STATUS.RESOURCE_EXHAUSTED,
      message: `${SHEDDING[r.reason]}${r.reason === 'priority_shed' ? ` (level ${r.level})` : ''}: ${r.rule.id} (${REJECTION_CODES[r.reason]})`,
      headers: { 'grpc-retry-pushback-ms': String(Math.max(1, Math.ceil(r.retryAfterMs))) },
    };
  }
  if (r.reason === 'rate_limited') {
    return {
      code: GRPC_STATUS.RESOURCE_EXHAUSTED,
      message: `rate limited by ${r.rule.id} (${REJECTION_CODES.rate_limited})`,
      headers: { 'grpc-retry-pushback-ms': String(Math.max(1, Math.ceil(r.retryAfterMs))) },
    };
  }
  return {
    code: GRPC_STATUS.UNAVAILABLE,
    message: `${r.reason === 'circuit_open' ? 'circuit open' : 'bulkhead full'}: ${r.rule.id} (${REJECTION_CODES[r.reason]})`,
    headers: { 'grpc-retry-pushback-ms': String(Math.max(1, Math.ceil(r.retryAfterMs))) },
  };
}

/** WebSocket close codes the sidecar sends (RFC 6455 §7.4.1). */
export const WS_CLOSE = {
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  /** Shutdown: the server restarts; reconnect (with backoff) — the drain closes with this. */
  SERVICE_RESTART: 1012,
} as const;

function isFencing(r: Rejection): r is FencingRejection {
  return r.reason in FENCING;
}

function sfString(s: string): string {
  return `"${s.replace(/["\\]/g, '\\$&')}"`;
}
