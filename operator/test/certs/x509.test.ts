import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkServerIdentity } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { oid, time, unsignedInteger } from '../../src/certs/der.ts';
import { createCa, createServingCert } from '../../src/certs/x509.ts';

const now = Date.now();
const validity = (ms: number) => ({ notBefore: new Date(now - 60_000), notAfter: new Date(now + ms) });
const DNS = ['sluice-webhook.sluice-system.svc', 'sluice-webhook.sluice-system.svc.cluster.local'];

describe('DER', () => {
  it('encodes OIDs, integers and times as the standard says', () => {
    expect(oid('1.2.840.10045.4.3.2').toString('hex')).toBe('06082a8648ce3d040302');
    expect(unsignedInteger(Buffer.from([0x80])).toString('hex')).toBe('02020080');
    expect(unsignedInteger(Buffer.from([0, 0, 5])).toString('hex')).toBe('020105');
    expect(time(new Date('2026-01-02T03:04:05.999Z')).toString('ascii', 2)).toBe('260102030405Z');
    expect(time(new Date('2051-01-02T03:04:05Z'))[0]).toBe(0x18); // GeneralizedTime from 2050
  });
});

describe('createCa / createServingCert', () => {
  const ca = createCa('sluice test CA', validity(86_400_000));
  const leaf = createServingCert(ca, DNS, validity(3_600_000));
  const caX = new X509Certificate(ca.certPem);
  const leafX = new X509Certificate(leaf.certPem);

  it('makes a CA and a leaf it signed, for the service names', () => {
    expect(caX.ca).toBe(true);
    expect(caX.verify(caX.publicKey)).toBe(true);
    expect(caX.subject).toContain('CN=sluice test CA');
    expect(leafX.ca).toBe(false);
    expect(leafX.issuer).toBe(caX.subject);
    expect(leafX.checkIssued(caX)).toBe(true);
    expect(leafX.verify(caX.publicKey)).toBe(true);
    expect(leafX.subjectAltName).toBe(`DNS:${DNS[0]}, DNS:${DNS[1]}`);
    expect(leafX.checkHost(DNS[0] as string)).toBe(DNS[0]);
    expect(leafX.validToDate.getTime()).toBe(Math.floor((now + 3_600_000) / 1000) * 1000);
  });

  it('refuses an empty validity or no DNS names', () => {
    expect(() => createCa('x', { notBefore: new Date(now), notAfter: new Date(now) })).toThrow(RangeError);
    expect(() => createServingCert(ca, [], validity(1000))).toThrow(/DNS name/);
  });

  it('is accepted by `openssl verify -x509_strict` as a TLS server certificate', () => {
    // An independent X.509 implementation: catches encodings Node is lenient about.
    const dir = mkdtempSync(join(tmpdir(), 'sluice-x509-'));
    try {
      writeFileSync(join(dir, 'ca.pem'), ca.certPem);
      writeFileSync(join(dir, 'leaf.pem'), leaf.certPem);
      const out = execFileSync('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', join(dir, 'ca.pem'), join(dir, 'leaf.pem')]).toString();
      expect(out.trim()).toBe(`${join(dir, 'leaf.pem')}: OK`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serves TLS that a client pinning the CA accepts for the service name, and another CA does not', async () => {
    const server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (_q, r) => r.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const get = (caPem: string) => new Promise<string>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port, ca: caPem, agent: false, servername: DNS[0], checkServerIdentity: (_h, c) => checkServerIdentity(DNS[0] as string, c) }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve(body));
      }).on('error', reject);
    });
    try {
      expect(await get(ca.certPem)).toBe('ok');
      await expect(get(createCa('other', validity(86_400_000)).certPem)).rejects.toThrow(/certificate/);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
