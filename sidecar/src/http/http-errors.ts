import type { ServerResponse } from 'node:http';
import { STATUS_CODES } from './node-http.ts';
import type { Socket } from 'node:net';

/**
 * Errors are API: every HTTP answer the sidecar gives itself, rather than relaying the app's, has a
 * stable code (in the JSON body, `{error, code}`), its status, and whether the connection is
 * closed after it (when the request's framing or body can no longer be trusted). The gRPC listener
 * has the same table in grpc/grpc-errors.ts; policy rejections (rate limit, open circuit, bulkhead,
 * fencing) map in policy-engine/responses.ts.
 */
export const HTTP_ERRORS = {
  // Requests the sidecar refuses after they parsed. None of them is forwarded or counted against
  // the app (breaker, bulkhead, limits); each counts in sluice_client_errors_total.
  SLUICE_ERR_REQUEST_TARGET: { status: 400, close: true, message: 'the request-target must be an absolute path or an http(s) URL (no "*" or authority form)' },
  SLUICE_ERR_PATH_ENCODING: { status: 400, close: true, message: 'the path has a "%" not followed by two hex digits' },
  SLUICE_ERR_PATH_ESCAPED_SLASH: { status: 400, close: true, message: 'the path has an escaped slash or backslash (%2F, %5C, \\), refused by --path-escaped-slashes reject' },
  SLUICE_ERR_HTTP_VERSION: { status: 400, close: true, message: 'only HTTP/1.0 and HTTP/1.1 are served on this port' },
  SLUICE_ERR_HOST: { status: 400, close: true, message: 'a request needs exactly one Host header' },
  SLUICE_ERR_CONNECTION_HEADER: { status: 400, close: true, message: 'Connection must not name Host, Content-Length or Transfer-Encoding' },
  SLUICE_ERR_METHOD_CONNECT: { status: 405, close: true, message: 'CONNECT is not served: the sidecar is not a forward proxy' },
  SLUICE_ERR_TRAILER_FIELD: { status: 400, close: true, message: 'a trailer must not carry framing or routing fields (Content-Length, Transfer-Encoding, Host, ...)' },
  SLUICE_ERR_BAD_REQUEST: { status: 400, close: true, message: 'the request cannot be forwarded as sent' },
  SLUICE_ERR_BODY_TOO_LARGE: { status: 413, close: true, message: 'request body too large' },
  /** An Upgrade request for anything but WebSocket. */
  SLUICE_ERR_NOT_WEBSOCKET: { status: 400, close: true, message: 'only WebSocket upgrades are served' },
  // Refused by Node's strict parser (llhttp): smuggling shapes — Content-Length with
  // Transfer-Encoding, a Transfer-Encoding not ending in chunked, obs-fold, bare LF — and
  // oversized or slow headers. Answered on the raw socket: the connection's framing is lost.
  SLUICE_ERR_HTTP_400: { status: 400, close: true, message: 'Bad Request' },
  SLUICE_ERR_HTTP_408: { status: 408, close: true, message: 'Request Timeout' },
  SLUICE_ERR_HTTP_431: { status: 431, close: true, message: 'Request Header Fields Too Large' },
  // The app failed: counted against it (breaker, outlier). The client's connection stays usable.
  SLUICE_ERR_UPSTREAM_TIMEOUT: { status: 504, close: false, message: 'upstream timed out' },
  SLUICE_ERR_UPSTREAM_CONNECT: { status: 502, close: false, message: 'upstream unreachable' },
  SLUICE_ERR_UPSTREAM_RESET: { status: 502, close: false, message: 'upstream failed' },
  // The sidecar itself.
  SLUICE_ERR_INTERNAL: { status: 500, close: false, message: 'internal error' },
  SLUICE_ERR_SHUTTING_DOWN: { status: 503, close: true, message: 'the sidecar is shutting down' },
} as const satisfies Record<string, { status: number; close: boolean; message: string }>;

export type HttpErrorCode = keyof typeof HTTP_ERRORS;

/** The client errors: refusals of a request that parsed, counted in sluice_client_errors_total. */
export type HttpClientErrorCode =
  | 'SLUICE_ERR_REQUEST_TARGET' | 'SLUICE_ERR_PATH_ENCODING' | 'SLUICE_ERR_PATH_ESCAPED_SLASH' | 'SLUICE_ERR_HTTP_VERSION'
  | 'SLUICE_ERR_HOST' | 'SLUICE_ERR_CONNECTION_HEADER' | 'SLUICE_ERR_METHOD_CONNECT' | 'SLUICE_ERR_TRAILER_FIELD' | 'SLUICE_ERR_BAD_REQUEST';

/** The code a parser error (Node's `clientError`) is answered with. */
export function parserErrorCode(code: string | undefined): HttpErrorCode {
  if (code === 'HPE_HEADER_OVERFLOW') return 'SLUICE_ERR_HTTP_431';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT') return 'SLUICE_ERR_HTTP_408';
  return 'SLUICE_ERR_HTTP_400';
}

/** Answers a request with `code` from the table (nothing when the app's answer has begun: the connection is cut). */
export function replyError(res: ServerResponse, code: HttpErrorCode): void {
  const e = HTTP_ERRORS[code];
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: e.message, code });
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  if (e.close) headers.connection = 'close';
  res.writeHead(e.status, headers);
  res.end(body);
}

/** Answers `code` from the table on the raw socket and closes it (parser errors, WebSocket upgrades). */
export function answerAndClose(socket: Socket, code: HttpErrorCode, extraHeaders = ''): void {
  const e = HTTP_ERRORS[code];
  writeAndClose(socket, e.status, extraHeaders, JSON.stringify({ error: e.message, code }));
}

/** The raw answer itself (a JSON body), also for refusals from another table (policy rejections). */
export function writeAndClose(socket: Socket, status: number, extraHeaders: string, body: string): void {
  if (!socket.writable || socket.writableEnded) {
    socket.destroy();
    return;
  }
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n${body}`,
  );
  socket.destroySoon?.();
}
