import { STATUS_CODES } from 'node:http';
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

/** Answers on the raw socket and closes it: after a parse error the connection's framing is lost. */
export function answerAndClose(socket: Socket, status: number, extraHeaders = ''): void {
  if (!socket.writable || socket.writableEnded) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: STATUS_CODES[status], code: `SLUICE_ERR_HTTP_${status}` });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n${body}`,
  );
  socket.destroySoon?.();
}
