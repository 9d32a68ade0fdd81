import type { IncomingMessage } from 'node:http';
import type { HttpClientErrorCode } from './http-errors.ts';

/**
 * Requests that parsed but must not be forwarded, because the app could read them differently
 * from the sidecar or the upstream client would refuse them as a failure of the app:
 * - HTTP/0.9 (no headers at all) and anything but 1.0/1.1;
 * - no Host, or several (RFC 9112 §3.2: 400) — an HTTP/1.0 request without one too, since the
 *   app would be handed a Host the client never sent;
 * - a Connection header naming Host, Content-Length or Transfer-Encoding: honouring it would drop
 *   the field and forward a request whose routing or framing the client did not send;
 * - CONNECT (Node hands it to the 'connect' event, answered there; this is the second fence).
 * Pure over the parsed request; the request-target is checked by path normalisation.
 */
export function requestProblem(req: IncomingMessage): HttpClientErrorCode | undefined {
  if (req.method === 'CONNECT') return 'SLUICE_ERR_METHOD_CONNECT';
  const v = req.httpVersion;
  if (v !== '1.1' && v !== '1.0') return 'SLUICE_ERR_HTTP_VERSION';
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++;
  }
  if (hosts !== 1) return 'SLUICE_ERR_HOST';
  const connection = req.headers.connection;
  // The common values skip the regular expression.
  if (connection !== undefined && connection !== 'keep-alive' && connection !== 'close' && CONNECTION_NAMES_FRAMING.test(connection)) {
    return 'SLUICE_ERR_CONNECTION_HEADER';
  }
  return undefined;
}

const CONNECTION_NAMES_FRAMING = /(?:^|,)\s*(?:host|content-length|transfer-encoding)\s*(?:,|$)/i;

/** Fields a trailer must not carry (RFC 9110 §6.5.1): they would change framing or routing. */
const FORBIDDEN_TRAILERS = new Set(['content-length', 'transfer-encoding', 'host', 'trailer', 'te', 'connection', 'content-encoding', 'content-type', 'content-range']);

export function trailerProblem(trailers: Record<string, string | undefined>): HttpClientErrorCode | undefined {
  for (const name in trailers) if (FORBIDDEN_TRAILERS.has(name)) return 'SLUICE_ERR_TRAILER_FIELD';
  return undefined;
}
