/**
 * The discovery protocol only gains optional fields. Here the wire is checked against the
 * protocol as it was before CircuitTransition: what a newer sidecar sends an older operator
 * decodes as a request with no message set (which its handler ignores), and an older sidecar's
 * messages decode unchanged with the current definition.
 */
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { PROTO_PATH } from './discovery.ts';

const current = readFileSync(PROTO_PATH, 'utf8');
// The definition before circuit transitions: without the oneof member and its message.
const before = current
  .replace(/\n\s*\/\/[^\n]*\n\s*\/\/[^\n]*\n\s*CircuitTransition circuit_transition = 5;/, '')
  .replace(/\/\/ One circuit of a CircuitBreakerPolicy[\s\S]*?\nmessage CircuitTransition \{[\s\S]*?\n\}\n/, '');

const typeIn = (text: string) => protobuf.parse(text, { keepCase: false }).root.lookupType('sluice.v1.DiscoveryRequest');
const opts = { oneofs: true, longs: Number, defaults: false };

describe('PolicyDiscovery wire compatibility', () => {
  it('the reconstructed older definition really lacks circuit transitions', () => {
    expect(current).toContain('circuit_transition = 5');
    expect(before).not.toContain('circuit_transition');
    expect(before).not.toContain('message CircuitTransition');
    expect(before).toContain('Report report = 4;');
  });

  it('an older operator decodes a circuit transition as a request with no message', () => {
    const bytes = typeIn(current).encode({ circuitTransition: { policyNamespace: 'shop', policyName: 'web', rule: 'upstream', from: 'closed', to: 'open', reason: 'ConsecutiveFailures', timeUnixMs: 1_700_000_000_000, openMs: 30_000 } }).finish();
    const old = typeIn(before).toObject(typeIn(before).decode(bytes), opts) as Record<string, unknown>;
    expect(old.message).toBeUndefined();
    expect(Object.keys(old).filter((k) => ['hello', 'ack', 'nack', 'report'].includes(k))).toEqual([]);
  });

  it('an older sidecar\'s messages decode the same with the current definition', () => {
    const msg = { report: { json: '{"leadership":{"elections":[]}}' } };
    const bytes = typeIn(before).encode(msg).finish();
    expect(typeIn(current).toObject(typeIn(current).decode(bytes), opts)).toEqual({ ...msg, message: 'report' });
  });
});
