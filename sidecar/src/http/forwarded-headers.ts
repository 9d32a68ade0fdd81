import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { TrustedProxies } from './client-address.ts';
import { connectionTokens, isHopByHop } from './hop-by-hop.ts';

/** Fields through which a proxy tells the app who the client is and what it asked for. */
const FORWARDING = new Set(['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'x-real-ip', 'forwarded']);

/**
 * The request's headers for the app as a flat [name, value, ...] list: hop-by-hop fields removed
 * and the forwarding fields set. From an untrusted peer (everyone, unless --trusted-proxies says
 * otherwise) every forwarding field the client sent is dropped and replaced by what the sidecar
 * saw — otherwise a client writes the Host of its choice into the app's redirects and password
 * reset links. From a trusted proxy they pass as sent and X-Forwarded-For gains the peer.
 */
export function forwardedRequestHeaders(req: IncomingMessage, trusted: TrustedProxies): string[] {
  const raw = req.rawHeaders;
  const listed = connectionTokens(req.headers.connection);
  const peer = req.socket.remoteAddress ?? '';
  const believe = trusted.has(peer);
  const out: string[] = [];
  let xff: string | undefined;
  let proto = false;
  let fhost = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (isHopByHop(lower) || lower === 'expect' || listed?.has(lower)) continue;
    if (FORWARDING.has(lower)) {
      if (!believe) continue;
      if (lower === 'x-forwarded-for') {
        xff = xff === undefined ? (raw[i + 1] as string) : `${xff}, ${raw[i + 1] as string}`;
        continue;
      }
      if (lower === 'x-forwarded-proto') proto = true;
      else if (lower === 'x-forwarded-host') fhost = true;
    }
    out.push(name, raw[i + 1] as string);
  }
  out.push('x-forwarded-for', xff === undefined ? peer : `${xff}, ${peer}`);
  if (!proto) out.push('x-forwarded-proto', 'http');
  if (!fhost && req.headers.host !== undefined) out.push('x-forwarded-host', req.headers.host);
  return out;
}

/**
 * gRPC metadata from an untrusted peer without the forwarding fields (the same rule as above):
 * the object itself when it carries none, the common case, else a copy without them.
 */
export function withoutForwardingFields<H extends IncomingHttpHeaders>(headers: H): H {
  let found = false;
  for (const name of FORWARDING) if (headers[name] !== undefined) found = true;
  if (!found) return headers;
  const copy = { ...headers };
  for (const name of FORWARDING) delete copy[name];
  return copy;
}
