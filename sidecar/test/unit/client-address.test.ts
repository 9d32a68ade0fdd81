import { describe, expect, it } from 'vitest';
import { clientAddress, TRUST_NOBODY, TrustedProxies } from '../../src/http/client-address.ts';

describe('clientAddress: the address every per-client feature counts', () => {
  const ingress = new TrustedProxies(['10.0.0.0/8', 'fd00::/8']);
  const cases: [peer: string, xff: string | string[] | undefined, trusted: TrustedProxies, expected: string][] = [
    ['203.0.113.5', '1.2.3.4', TRUST_NOBODY, '203.0.113.5'],
    ['::ffff:203.0.113.5', undefined, TRUST_NOBODY, '203.0.113.5'],
    ['203.0.113.5', '1.2.3.4', ingress, '203.0.113.5'], // an untrusted peer's header is not read
    ['10.1.1.1', '198.51.100.7', ingress, '198.51.100.7'],
    ['::ffff:10.1.1.1', '198.51.100.7, 10.2.2.2', ingress, '198.51.100.7'],
    ['10.1.1.1', '6.6.6.6, 198.51.100.7, 10.2.2.2', ingress, '198.51.100.7'], // left of the first untrusted: not believed
    ['10.1.1.1', ['6.6.6.6', '198.51.100.7'], ingress, '198.51.100.7'],
    ['10.1.1.1', '10.9.9.9, 10.2.2.2', ingress, '10.9.9.9'], // all trusted: the leftmost
    ['10.1.1.1', 'garbage, 10.2.2.2', ingress, '10.2.2.2'],
    ['10.1.1.1', undefined, ingress, '10.1.1.1'],
    ['fd00::1', '2001:db8::5', ingress, '2001:db8::5'],
  ];
  it.each(cases)('peer %s, X-Forwarded-For %j', (peer, xff, trusted, expected) => {
    expect(clientAddress(peer, xff, trusted)).toBe(expected);
  });

  it('refuses entries that are neither an address nor a CIDR', () => {
    for (const bad of ['10.0.0.0/33', 'fd00::/129', 'host.local', '10.0.0.0/', '10.0.0.0/8/1']) {
      expect(() => new TrustedProxies([bad]), bad).toThrow(RangeError);
    }
  });
});
