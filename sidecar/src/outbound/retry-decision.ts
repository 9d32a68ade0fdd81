import type { UpstreamPlan } from '../../../lib/policy/upstream.ts';
import type { Random } from './load-balancer.ts';

export type RetrySpec = UpstreamPlan['retry'];

/** How one try ended, before anything of its response reached the app. */
export type TryOutcome =
  | { readonly kind: 'connect-failure' }
  | { readonly kind: 'reset' }
  | { readonly kind: 'try-timeout' }
  /** A gRPC status in a trailers-only answer; `pushback` is grpc-retry-pushback-ms as sent. */
  | { readonly kind: 'grpc-status'; readonly code: number; readonly pushback?: string | undefined }
  | { readonly kind: 'http-status'; readonly status: number };

export interface RetryContext {
  /** Tries made so far (1 after the first). */
  readonly tries: number;
  /** The request can still be sent again (its body fits the replay buffer, or it had none). */
  readonly replayable: boolean;
  /** HTTP only: the method may be repeated (GET, HEAD, OPTIONS, PUT, DELETE, TRACE). */
  readonly idempotent: boolean;
  readonly timeLeftMs: number;
}

export type RetryDecision =
  | { readonly retry: true; readonly delayMs: number }
  | { readonly retry: false; readonly reason: 'not-retryable' | 'attempts' | 'not-replayable' | 'pushback' | 'no-time' };

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
export const isIdempotent = (method: string): boolean => IDEMPOTENT.has(method);

/**
 * Whether to try again, and after how long — gRFC A6 for gRPC, the same rules in HTTP's terms:
 *  - only outcomes the policy names (`retryOn`), and only while tries remain;
 *  - only a request that can be replayed; HTTP only idempotent methods, except a connect
 *    failure, which sent nothing and is always safe;
 *  - grpc-retry-pushback-ms from the server replaces the backoff; a negative or malformed one
 *    means "do not retry" (A6);
 *  - the backoff is random in [0, min(initial × 2^(n-1), max)] (A6's full jitter);
 *  - never when the delay would use up the time left.
 * The budget is asked last, by the caller, so a retry refused here costs no budget.
 */
export function decideRetry(spec: RetrySpec, outcome: TryOutcome, ctx: RetryContext, random: Random = Math.random): RetryDecision {
  if (!retryable(spec, outcome)) return { retry: false, reason: 'not-retryable' };
  if (ctx.tries >= spec.attempts) return { retry: false, reason: 'attempts' };
  if (!ctx.replayable) return { retry: false, reason: 'not-replayable' };
  if (outcome.kind !== 'connect-failure' && !ctx.idempotent) return { retry: false, reason: 'not-retryable' };
  let delayMs: number;
  if (outcome.kind === 'grpc-status' && outcome.pushback !== undefined) {
    const ms = /^\d{1,9}$/.test(outcome.pushback) ? Number(outcome.pushback) : -1;
    if (ms < 0) return { retry: false, reason: 'pushback' };
    delayMs = ms;
  } else {
    const cap = Math.min(spec.backoff.initialMs * 2 ** (ctx.tries - 1), spec.backoff.maxMs);
    delayMs = random() * cap;
  }
  if (delayMs >= ctx.timeLeftMs) return { retry: false, reason: 'no-time' };
  return { retry: true, delayMs };
}

function retryable(spec: RetrySpec, o: TryOutcome): boolean {
  switch (o.kind) {
    case 'connect-failure': return spec.connectFailure;
    // A try that outlived perTryTimeout was abandoned with a reset: it counts as one.
    case 'reset':
    case 'try-timeout': return spec.reset;
    case 'grpc-status': return spec.grpcCodes[o.code] === 1;
    case 'http-status': return spec.httpStatuses[o.status] === 1;
  }
}
