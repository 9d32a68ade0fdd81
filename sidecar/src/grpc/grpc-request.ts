import type { IncomingHttpHeaders } from 'node:http2';
import type { GrpcProxyErrorCode } from './grpc-errors.ts';
import { COUNTABLE_ENCODINGS } from './grpc-framing.ts';
import { parseGrpcTimeout } from './grpc-timeout.ts';

/** What the proxy needs to know about a call before deciding on it, read once from its headers. */
export interface GrpcCallHead {
  /** `pkg.Service/Method`: the path without its leading slash. */
  readonly grpcMethod: string;
  readonly path: string;
  /** The client's deadline from `grpc-timeout`, in ms. */
  readonly timeoutMs: number | undefined;
}

// `/pkg.Service/Method`: two non-empty segments, no further slashes (a gRPC path has exactly two).
const PATH_RE = /^\/[^/\s]+\/[^/\s]+$/;

/** Validates the request headers of a would-be gRPC call; pure so every refusal is unit-tested. */
export function readCallHead(headers: IncomingHttpHeaders): GrpcCallHead | { readonly error: GrpcProxyErrorCode } {
  const contentType = headers['content-type'];
  // application/grpc, application/grpc+proto, application/grpc+json, ... (optionally ;params)
  if (typeof contentType !== 'string' || !/^application\/grpc(?:$|[+;])/i.test(contentType)) return { error: 'SLUICE_ERR_GRPC_CONTENT_TYPE' };
  if (headers[':method'] !== 'POST') return { error: 'SLUICE_ERR_GRPC_METHOD' };
  const path = headers[':path'];
  if (typeof path !== 'string' || !PATH_RE.test(path)) return { error: 'SLUICE_ERR_GRPC_PATH' };
  // A message the sidecar cannot inflate cannot be held to the size limit (gRPC: UNIMPLEMENTED).
  const encoding = headers['grpc-encoding'];
  if (encoding !== undefined && (typeof encoding !== 'string' || !COUNTABLE_ENCODINGS.has(encoding.toLowerCase()))) return { error: 'SLUICE_ERR_GRPC_ENCODING' };
  let timeoutMs: number | undefined;
  const t = headers['grpc-timeout'];
  if (t !== undefined) {
    timeoutMs = typeof t === 'string' ? parseGrpcTimeout(t) : undefined;
    if (timeoutMs === undefined) return { error: 'SLUICE_ERR_GRPC_TIMEOUT_HEADER' };
  }
  return { grpcMethod: path.slice(1), path, timeoutMs };
}

// Connection-specific headers are illegal in HTTP/2 (RFC 9113 §8.2.2); grpc-timeout is rewritten.
const NOT_FORWARDED = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'host', 'grpc-timeout']);

/**
 * The request headers for the app: every metadata entry the client sent (binary `-bin` ones
 * included), with pseudo-headers rebuilt for the upstream connection and grpc-timeout replaced
 * by the remaining deadline.
 */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders, path: string, grpcTimeout: string | undefined): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {
    ':method': 'POST',
    ':scheme': 'http',
    ':path': path,
    ':authority': (headers[':authority'] as string | undefined) ?? 'localhost',
  };
  for (const name in headers) {
    if (name.charCodeAt(0) === 58 /* ':' */ || NOT_FORWARDED.has(name)) continue;
    const v = headers[name];
    if (v !== undefined) out[name] = v;
  }
  if (grpcTimeout !== undefined) out['grpc-timeout'] = grpcTimeout;
  return out;
}

/** Response headers or trailers from the app, without pseudo-headers, for the client. */
export function relayedHeaders(headers: IncomingHttpHeaders, status?: number): Record<string, string | string[] | number> {
  const out: Record<string, string | string[] | number> = {};
  if (status !== undefined) out[':status'] = status;
  for (const name in headers) {
    if (name.charCodeAt(0) === 58 || NOT_FORWARDED.has(name)) continue;
    const v = headers[name];
    if (v !== undefined) out[name] = v;
  }
  return out;
}
