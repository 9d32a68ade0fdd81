import { GRPC_STATUS } from '../policy-engine/responses.ts';

/**
 * Errors are API: every failure the proxy itself answers (rather than relaying the app's status)
 * has a stable code, carried in `grpc-message` and in `sluice_grpc_proxy_errors_total{error}`, and
 * the gRPC status (plus HTTP status where gRPC says to use one) it is answered with. Policy
 * rejections (rate limit, open circuit, bulkhead) map in policy-engine/responses.ts.
 */
export const GRPC_PROXY_ERRORS = {
  /** content-type is not application/grpc*: 415 so non-gRPC clients see an error too. */
  SLUICE_ERR_GRPC_CONTENT_TYPE: { grpcStatus: GRPC_STATUS.INTERNAL, httpStatus: 415, message: 'content-type must be application/grpc' },
  SLUICE_ERR_GRPC_METHOD: { grpcStatus: GRPC_STATUS.INTERNAL, httpStatus: 405, message: 'gRPC calls use POST' },
  SLUICE_ERR_GRPC_PATH: { grpcStatus: GRPC_STATUS.UNIMPLEMENTED, httpStatus: 200, message: 'path must be /package.Service/Method' },
  SLUICE_ERR_GRPC_TIMEOUT_HEADER: { grpcStatus: GRPC_STATUS.INTERNAL, httpStatus: 200, message: 'malformed grpc-timeout' },
  /** grpc-encoding the sidecar cannot inflate, so it could not hold the message to the size limit. */
  SLUICE_ERR_GRPC_ENCODING: { grpcStatus: GRPC_STATUS.UNIMPLEMENTED, httpStatus: 200, message: 'grpc-encoding must be identity, gzip or deflate' },
  SLUICE_ERR_GRPC_MESSAGE_TOO_LARGE: { grpcStatus: GRPC_STATUS.RESOURCE_EXHAUSTED, httpStatus: 200, message: 'message larger than the limit' },
  SLUICE_ERR_GRPC_MALFORMED_MESSAGE: { grpcStatus: GRPC_STATUS.INTERNAL, httpStatus: 200, message: 'malformed length-prefixed message' },
  SLUICE_ERR_GRPC_TRUNCATED_MESSAGE: { grpcStatus: GRPC_STATUS.INTERNAL, httpStatus: 200, message: 'request ended inside a message' },
  SLUICE_ERR_GRPC_DEADLINE: { grpcStatus: GRPC_STATUS.DEADLINE_EXCEEDED, httpStatus: 200, message: 'deadline exceeded' },
  SLUICE_ERR_GRPC_BREAKER_TIMEOUT: { grpcStatus: GRPC_STATUS.DEADLINE_EXCEEDED, httpStatus: 200, message: 'call exceeded the circuit breaker timeout' },
  SLUICE_ERR_GRPC_UPSTREAM_CONNECT: { grpcStatus: GRPC_STATUS.UNAVAILABLE, httpStatus: 200, message: 'cannot reach the app' },
  SLUICE_ERR_GRPC_UPSTREAM_RESET: { grpcStatus: GRPC_STATUS.INTERNAL, httpStatus: 200, message: 'the app reset the stream' },
  SLUICE_ERR_GRPC_UPSTREAM_PROTOCOL: { grpcStatus: GRPC_STATUS.INTERNAL, httpStatus: 200, message: 'the app broke the gRPC protocol' },
  SLUICE_ERR_GRPC_SHUTTING_DOWN: { grpcStatus: GRPC_STATUS.UNAVAILABLE, httpStatus: 200, message: 'the sidecar is shutting down' },
} as const;

export type GrpcProxyErrorCode = keyof typeof GRPC_PROXY_ERRORS;

/** Connection-level refusals, counted in the same metric (no gRPC status can be sent on them). */
export const CONNECTION_ERRORS = {
  SLUICE_ERR_GRPC_HTTP1: 'an HTTP/1.x request on the h2c port (answered 505)',
  SLUICE_ERR_GRPC_BAD_PREFACE: 'bytes that are neither HTTP/2 nor HTTP/1 (connection closed)',
  SLUICE_ERR_GRPC_HTTP2_PROTOCOL: 'an HTTP/2 protocol error on the session (GOAWAY sent)',
  SLUICE_ERR_GRPC_UPSTREAM_KEEPALIVE: 'a connection to the app left a keepalive PING unanswered (closed; the next call dials anew)',
  SLUICE_INFO_GRPC_MAX_CONNECTION_AGE: 'a client connection reached --grpc-max-connection-age and was sent GOAWAY (not an error: counted here with the other connection events)',
} as const;

export type ConnectionErrorCode = keyof typeof CONNECTION_ERRORS;
