import { BlockList, isIP } from 'node:net';

/**
 * The proxies in front of the sidecar whose `X-Forwarded-For` may be believed (`--trusted-proxies`,
 * CIDRs or single addresses). Empty — the default — trusts nobody: the client is the TCP peer.
 */
export class TrustedProxies {
  readonly cidrs: readonly string[];
  private readonly list = new BlockList();

  /** Throws RangeError naming the entry that is neither an address nor a CIDR. */
  constructor(cidrs: readonly string[] = []) {
    this.cidrs = cidrs;
    for (const entry of cidrs) {
      const [address, bits, extra] = entry.split('/');
      const family = isIP(address ?? '');
      const max = family === 4 ? 32 : 128;
      const prefix = bits === undefined ? max : Number(bits);
      if (family === 0 || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > max || bits === '') {
        throw new RangeError(`"${entry}" is not an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/8)`);
      }
      this.list.addSubnet(address as string, prefix, family === 4 ? 'ipv4' : 'ipv6');
    }
  }

  get none(): boolean {
    return this.cidrs.length === 0;
  }

  has(address: string): boolean {
    if (this.cidrs.length === 0) return false;
    const a = plainAddress(address);
    const family = isIP(a);
    return family !== 0 && this.list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  }
}

export const TRUST_NOBODY = new TrustedProxies();

/**
 * The client address of one request: what `RemoteAddress` rate-limit keys and every other
 * per-client feature count. From an untrusted peer it is the peer; from a trusted proxy it is the
 * first address in `X-Forwarded-For`, read right to left, that is not itself a trusted proxy
 * (Envoy's and nginx's `real_ip_recursive` rule: entries left of the first untrusted one could
 * have been written by anyone).
 */
export function clientAddress(peer: string, forwardedFor: string | string[] | undefined, trusted: TrustedProxies): string {
  if (trusted.none || forwardedFor === undefined || !trusted.has(peer)) return plainAddress(peer);
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
  let leftmost = plainAddress(peer);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = (hops[i] as string).trim();
    if (isIP(plainAddress(hop)) === 0) return leftmost; // garbage from further out: stop believing
    leftmost = plainAddress(hop);
    if (!trusted.has(leftmost)) return leftmost;
  }
  return leftmost;
}

/** `::ffff:10.1.2.3` (an IPv4 peer on a dual-stack socket) is the IPv4 address it carries. */
function plainAddress(a: string): string {
  return a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a;
}
