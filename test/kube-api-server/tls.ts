/**
 * Self-signed certificates for the test server and for webhook servers in tests. Node cannot
 * create X.509 certificates itself, so this shells out to the `openssl` CLI (present on every
 * machine this project builds on); the certificate is its own CA, so clients pin it as the CA.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SelfSignedCert {
  cert: string;
  key: string;
}

/** A P-256 certificate valid for the given DNS names and IPs (default: localhost, 127.0.0.1). */
export function selfSignedCert(hosts: string[] = ['localhost', '127.0.0.1'], commonName = hosts[0] ?? 'localhost'): SelfSignedCert {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cert-'));
  try {
    const san = hosts.map((h) => (/^[\d.]+$/.test(h) || h.includes(':') ? `IP:${h}` : `DNS:${h}`)).join(',');
    const conf = join(dir, 'openssl.cnf');
    writeFileSync(conf, [
      '[req]', 'distinguished_name = dn', 'x509_extensions = ext', 'prompt = no',
      '[dn]', `CN = ${commonName}`,
      '[ext]', 'basicConstraints = critical,CA:TRUE', 'keyUsage = critical,digitalSignature,keyCertSign,keyEncipherment',
      'extendedKeyUsage = serverAuth,clientAuth', `subjectAltName = ${san}`, 'subjectKeyIdentifier = hash',
    ].join('\n'));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-config', conf,
    ], { stdio: 'ignore' });
    return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
