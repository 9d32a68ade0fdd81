import type { IncomingHttpHeaders } from 'node:http';

/** RFC 9110 §7.6.1: connection-specific fields are consumed by each hop, never forwarded. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings',
]);

export function isHopByHop(lowerName: string): boolean {
  return HOP_BY_HOP.has(lowerName);
}

/** Names listed in a Connection header are hop-by-hop too. */
export function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  // Nearly every request and response says just "keep-alive" or "close": nothing to split.
  if (value === undefined || value === 'keep-alive' || value === 'close' || value === 'Keep-Alive' || value === 'Close') return undefined;
  const tokens = (Array.isArray(value) ? value.join(',') : value).split(',').map((t) => t.trim().toLowerCase()).filter(Boolean);
  const extra = tokens.filter((t) => t !== 'close' && t !== 'keep-alive' && t !== 'upgrade');
  return extra.length > 0 ? new Set(extra) : undefined;
}

/**
 * Response headers from the app, minus hop-by-hop fields, as the flat [name, value, ...] list
 * res.writeHead accepts. Copying beats `delete` on undici's object, which would push it into
 * V8's slow dictionary mode on every response.
 */
export function responseHeaders(headers: IncomingHttpHeaders): string[] {
  const listed = headers.connection === undefined ? undefined : connectionTokens(headers.connection);
  const out: string[] = [];
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.push(name, v);
    else out.push(name, value);
  }
  return out;
}
