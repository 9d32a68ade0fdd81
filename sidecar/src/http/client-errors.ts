import { STATUS_CODES } from './node-http.ts';
import type { Socket } from 'node:net';

/**
 * What a malformed or abusive request is answered with before anything reaches the app. Node's
 * strict parser (llhttp) already refuses smuggling shapes — Content-Length with Transfer-Encoding,
 * a Transfer-Encoding not ending in chunked, obs-fold, bare LF — and we map its errors to a status.
 */
export function clientErrorStatus(code: string | undefined): number {
  if (code === 'HPE_HEADER_OVERFLOW') return 431;
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT') return 408;
  return 400;
}

/**
 * Requests the sidecar refuses itself after they parsed: the one table of their codes, statuses
 * and reasons. None of them is forwarded or counted against the app (breaker, bulkhead, limits).
 */
export const HTTP_CLIENT_ERRORS = {
  SLUICE_ERR_REQUEST_TARGET: { status: 400, message: 'the request-target must be an absolute path or an http(s) URL (no "*" or authority form)' },
  SLUICE_ERR_PATH_ENCODING: { status: 400, message: 'the path has a "%" not followed by two hex digits' },
  SLUICE_ERR_PATH_ESCAPED_SLASH: { status: 400, message: 'the path has an escaped slash or backslash (%2F, %5C, \\), refused by --path-escaped-slashes reject' },
  SLUICE_ERR_HTTP_VERSION: { status: 400, message: 'only HTTP/1.0 and HTTP/1.1 are served on this port' },
  SLUICE_ERR_HOST: { status: 400, message: 'a request needs exactly one Host header' },
  SLUICE_ERR_CONNECTION_HEADER: { status: 400, message: 'Connection must not name Host, Content-Length or Transfer-Encoding' },
  SLUICE_ERR_METHOD_CONNECT: { status: 405, message: 'CONNECT is not served: the sidecar is not a forward proxy' },
  SLUICE_ERR_TRAILER_FIELD: { status: 400, message: 'a trailer must not carry framing or routing fields (Content-Length, Transfer-Encoding, Host, ...)' },
  SLUICE_ERR_BAD_REQUEST: { status: 400, message: 'the request cannot be forwarded as sent' },
} as const satisfies Record<string, { status: number; message: string }>;

export type HttpClientErrorCode = keyof typeof HTTP_CLIENT_ERRORS;

/** Answers on the raw socket and closes it: after a parse error the connection's framing is lost. */
export function answerAndClose(socket: Socket, status: number, extraHeaders = '', code = `SLUICE_ERR_HTTP_${status}`, message = STATUS_CODES[status]): void {
  if (!socket.writable || socket.writableEnded) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: message, code });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n${body}`,
  );
  socket.destroySoon?.();
}
