import type { CallOutcome } from '../policy-engine/engine.ts';
import { GRPC_STATUS } from '../policy-engine/responses.ts';

/**
 * Every answer the outbound path gives itself (rather than relaying the endpoint's), with a
 * stable code carried in grpc-message / the JSON body and in
 * `sluice_outbound_calls_total{outcome}`, mapped once to a gRPC status and an HTTP status.
 */
export const OUTBOUND_ERRORS = {
  SLUICE_ERR_OUTBOUND_NO_ENDPOINTS: { grpcStatus: GRPC_STATUS.UNAVAILABLE, httpStatus: 503, message: 'the upstream has no ready endpoint' },
  SLUICE_ERR_OUTBOUND_CONNECT: { grpcStatus: GRPC_STATUS.UNAVAILABLE, httpStatus: 503, message: 'cannot connect to an endpoint of the upstream' },
  SLUICE_ERR_OUTBOUND_RESET: { grpcStatus: GRPC_STATUS.UNAVAILABLE, httpStatus: 502, message: 'the endpoint reset the call' },
  SLUICE_ERR_OUTBOUND_TIMEOUT: { grpcStatus: GRPC_STATUS.DEADLINE_EXCEEDED, httpStatus: 504, message: 'the call exceeded its timeout' },
  SLUICE_ERR_OUTBOUND_TRY_TIMEOUT: { grpcStatus: GRPC_STATUS.DEADLINE_EXCEEDED, httpStatus: 504, message: 'no try answered within perTryTimeout' },
  SLUICE_ERR_OUTBOUND_PROTOCOL: { grpcStatus: GRPC_STATUS.INTERNAL, httpStatus: 502, message: 'the endpoint broke the protocol' },
  SLUICE_ERR_OUTBOUND_BAD_REQUEST: { grpcStatus: GRPC_STATUS.INTERNAL, httpStatus: 400, message: 'not a well-formed request' },
  SLUICE_ERR_OUTBOUND_SHUTTING_DOWN: { grpcStatus: GRPC_STATUS.UNAVAILABLE, httpStatus: 503, message: 'the sidecar is shutting down' },
} as const;

export type OutboundErrorCode = keyof typeof OUTBOUND_ERRORS;

/** What a circuit breaker guarding the Upstream (`match.upstream`) learns from a call's end. */
export function breakerOutcome(outcome: string, grpcCode: number | undefined, httpStatus?: number): CallOutcome {
  if (outcome === 'SLUICE_ERR_OUTBOUND_TIMEOUT' || outcome === 'SLUICE_ERR_OUTBOUND_TRY_TIMEOUT') return { timedOut: true };
  if (outcome === 'SLUICE_ERR_OUTBOUND_CONNECT' || outcome === 'SLUICE_ERR_OUTBOUND_NO_ENDPOINTS') return { connectError: true };
  if (outcome in OUTBOUND_ERRORS) {
    const spec = OUTBOUND_ERRORS[outcome as OutboundErrorCode];
    return { grpcCode: spec.grpcStatus, status: spec.httpStatus };
  }
  return { ...(grpcCode !== undefined ? { grpcCode } : {}), ...(httpStatus !== undefined ? { status: httpStatus } : {}) };
}
