/**
 * `--operator-ca` / SLUICE_OPERATOR_CA and `--operator-server-name`: a PEM file or
 * the PEM inline (as the injector sets it); with a CA the discovery client is TLS-only.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../lib/log.ts';
import { PolicyStore } from '../../src/config/policy-store.ts';
import { DiscoveryClient } from '../../src/discovery/discovery-client.ts';
import { parseCliOptions, UsageError } from '../../src/cli-options.ts';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n';
const dir = mkdtempSync(join(tmpdir(), 'sluice-opca-'));
const caFile = join(dir, 'ca.crt');
writeFileSync(caFile, PEM);
const notPem = join(dir, 'not-pem.txt');
writeFileSync(notPem, 'hello');
const base = ['--operator', 'sluice-discovery.sluice-system.svc:15010'];

describe('--operator-ca', () => {
  const cases: { name: string; argv: string[]; env?: Record<string, string>; ca?: string; serverName?: string; error?: RegExp }[] = [
    { name: 'no CA: plaintext', argv: base },
    { name: 'a PEM file', argv: [...base, '--operator-ca', caFile], ca: PEM },
    { name: 'inline PEM in SLUICE_OPERATOR_CA (injected)', argv: base, env: { SLUICE_OPERATOR_CA: PEM }, ca: PEM },
    { name: 'the flag wins over the env', argv: [...base, '--operator-ca', caFile], env: { SLUICE_OPERATOR_CA: 'bogus' }, ca: PEM },
    { name: 'a server name override', argv: [...base, '--operator-ca', caFile, '--operator-server-name', 'sluice-discovery.sluice-system.svc'], ca: PEM, serverName: 'sluice-discovery.sluice-system.svc' },
    { name: 'a missing file', argv: [...base, '--operator-ca', join(dir, 'nope.crt')], error: /--operator-ca: cannot read/ },
    { name: 'a file without certificates', argv: [...base, '--operator-ca', notPem], error: /no PEM certificate/ },
    { name: 'server name without CA', argv: [...base, '--operator-server-name', 'x.svc'], error: /needs --operator-ca/ },
    { name: 'CA in standalone mode', argv: ['--config', 'sluice.yaml', '--operator-ca', caFile], error: /need --operator/ },
  ];
  it.each(cases)('$name', ({ argv, env, ca, serverName, error }) => {
    if (error) {
      expect(() => parseCliOptions(argv, env ?? {})).toThrow(UsageError);
      expect(() => parseCliOptions(argv, env ?? {})).toThrow(error);
      return;
    }
    const o = parseCliOptions(argv, env ?? {});
    if (o === 'help') throw new Error('unreachable');
    expect(o.operatorCa).toBe(ca);
    expect(o.operatorServerName).toBe(serverName);
  });
});

describe('DiscoveryClient transport', () => {
  const identity = { name: 'web-1', namespace: 'shop', tokenFile: caFile };
  const lines: string[] = [];
  const logger = createLogger('warn', {}, (l) => lines.push(l));
  const make = (tls?: { caPem: string }) => new DiscoveryClient({ targets: ['127.0.0.1:1'], identity, sidecarId: 's', store: new PolicyStore(), logger, ...(tls ? { tls } : {}) });

  it('without a CA: plaintext, and a warning that the token travels in clear', () => {
    lines.length = 0;
    expect(make().tls).toBe(false);
    expect(lines.join('')).toMatch(/plaintext/);
  });

  it('with a CA: TLS, no warning', () => {
    lines.length = 0;
    expect(make({ caPem: PEM }).tls).toBe(true);
    expect(lines).toEqual([]);
  });

  it('refuses a CA that is not PEM at construction', () => {
    expect(() => make({ caPem: 'not a certificate' })).toThrow(/PEM/);
  });
});
