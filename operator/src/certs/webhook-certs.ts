/**
 * The webhook's certificate material as it is stored in its Secret, and the conversion both ways.
 * The Secret is `kubernetes.io/tls` (tls.crt / tls.key, so ordinary tools read it) plus:
 *  - `ca.crt` / `ca.key`: the CA that signs serving certificates;
 *  - `ca-bundle.crt`: every CA the API server should trust — the current one and, after a CA
 *    rotation, the previous ones until they expire, so a replica still serving a certificate from
 *    the old CA keeps working while it catches up.
 */
import { X509Certificate } from 'node:crypto';

export interface WebhookCerts {
  caCertPem: string;
  caKeyPem: string;
  certPem: string;
  keyPem: string;
  /** Concatenated PEMs, newest CA first. */
  caBundlePem: string;
}

export const SECRET_KEYS = {
  cert: 'tls.crt',
  key: 'tls.key',
  caCert: 'ca.crt',
  caKey: 'ca.key',
  caBundle: 'ca-bundle.crt',
} as const;

export const SECRET_TYPE = 'kubernetes.io/tls';

/** Reads the material from a Secret's `data` (base64); missing pieces are empty strings. */
export function certsFromSecretData(data: Record<string, string> | undefined): WebhookCerts {
  const get = (k: string) => (data?.[k] ? Buffer.from(data[k], 'base64').toString('utf8') : '');
  return {
    caCertPem: get(SECRET_KEYS.caCert),
    caKeyPem: get(SECRET_KEYS.caKey),
    certPem: get(SECRET_KEYS.cert),
    keyPem: get(SECRET_KEYS.key),
    caBundlePem: get(SECRET_KEYS.caBundle),
  };
}

export function certsToSecretData(c: WebhookCerts): Record<string, string> {
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  return {
    [SECRET_KEYS.cert]: b64(c.certPem),
    [SECRET_KEYS.key]: b64(c.keyPem),
    [SECRET_KEYS.caCert]: b64(c.caCertPem),
    [SECRET_KEYS.caKey]: b64(c.caKeyPem),
    [SECRET_KEYS.caBundle]: b64(c.caBundlePem),
  };
}

/** Splits concatenated PEM certificates. */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g)?.map((p) => (p.endsWith('\n') ? p : `${p}\n`)) ?? [];
}

/**
 * The bundle after a CA rotation: the new CA first, then earlier CAs that are still valid at
 * `now` (at most `keep` of them; older ones are dropped first).
 */
export function nextCaBundle(newCaPem: string, previousBundle: string, now: Date, keep = 2): string {
  const fresh = new X509Certificate(newCaPem).fingerprint256;
  const older = splitPem(previousBundle).filter((pem) => {
    try {
      const x = new X509Certificate(pem);
      return x.fingerprint256 !== fresh && x.validToDate > now;
    } catch {
      return false;
    }
  });
  return [newCaPem.endsWith('\n') ? newCaPem : `${newCaPem}\n`, ...older.slice(0, keep)].join('');
}
