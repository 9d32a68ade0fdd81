/**
 * Decides, from the certificates in the Secret and the time, whether the webhook's CA and serving
 * certificate can be kept or must be (re)issued — and when to look again. Pure: no I/O, time is
 * passed in, so the whole rotation schedule is table-tested without waiting.
 *
 * Rotation happens at `renewFraction` (default 2/3) of a certificate's lifetime, well before it
 * expires: a replica that misses one check (restart, API server blip) still has a third of the
 * lifetime to catch up, and the CA is renewed long before the leaves it signed expire.
 */
import { sanForm } from './x509.ts';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { WebhookCerts } from './webhook-certs.ts';

export interface CertPolicy {
  /** DNS names the serving certificate must carry (`<svc>.<ns>.svc`, `…svc.cluster.local`). */
  dnsNames: readonly string[];
  caCommonName: string;
  caLifetimeMs: number;
  servingLifetimeMs: number;
  /** Fraction of the lifetime after which a certificate is renewed. */
  renewFraction: number;
  /** notBefore is set this far in the past, so nodes with a slightly slow clock accept it. */
  backdateMs: number;
}

const DAY = 86_400_000;
export const DEFAULT_CERT_POLICY = {
  caLifetimeMs: 5 * 365 * DAY,
  servingLifetimeMs: 90 * DAY,
  renewFraction: 2 / 3,
  backdateMs: 60_000,
} as const;

export function certPolicy(p: Pick<CertPolicy, 'dnsNames' | 'caCommonName'> & Partial<CertPolicy>): CertPolicy {
  const policy: CertPolicy = { ...DEFAULT_CERT_POLICY, ...p };
  if (policy.dnsNames.length === 0) throw new RangeError('certificate policy: at least one DNS name is required');
  if (!(policy.renewFraction > 0 && policy.renewFraction < 1)) throw new RangeError('certificate policy: renewFraction must be in (0, 1)');
  if (!(policy.servingLifetimeMs >= 1000) || !(policy.caLifetimeMs >= policy.servingLifetimeMs)) {
    throw new RangeError('certificate policy: lifetimes must be at least 1s, and the CA must live at least as long as the serving certificate');
  }
  // The renewal point of a fresh certificate must lie in the future, or it would renew forever.
  const f = policy.renewFraction;
  if (!(policy.backdateMs >= 0 && policy.backdateMs * (1 - f) < f * policy.servingLifetimeMs)) {
    throw new RangeError('certificate policy: backdateMs is too large for the serving lifetime');
  }
  return policy;
}

export type RotationPlan =
  | { action: 'keep'; renewAt: Date }
  | { action: 'renew'; renewCa: boolean; reason: string };

function renewPoint(x: X509Certificate, fraction: number): Date {
  const from = x.validFromDate.getTime();
  return new Date(from + (x.validToDate.getTime() - from) * fraction);
}

function parse(pem: string): X509Certificate | undefined {
  try {
    return pem ? new X509Certificate(pem) : undefined;
  } catch {
    return undefined;
  }
}

function keyMatches(x: X509Certificate, keyPem: string): boolean {
  try {
    return x.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

function sans(x: X509Certificate): string[] {
  return (x.subjectAltName ?? '').split(',').map((s) => s.trim())
    .map((s) => (s.startsWith('DNS:') ? s.slice(4) : s.startsWith('IP Address:') ? s.slice(11) : ''))
    .filter(Boolean).sort();
}

export function planRotation(observed: WebhookCerts | undefined, policy: CertPolicy, now: Date): RotationPlan {
  const ca = parse(observed?.caCertPem ?? '');
  if (!observed || !ca) return { action: 'renew', renewCa: true, reason: 'NoCA' };
  if (!ca.ca || !keyMatches(ca, observed.caKeyPem)) return { action: 'renew', renewCa: true, reason: 'CAInvalid' };
  const caRenewAt = renewPoint(ca, policy.renewFraction);
  if (now >= caRenewAt) return { action: 'renew', renewCa: true, reason: 'CARenewalDue' };
  if (!observed.caBundlePem.includes(observed.caCertPem.trim())) return { action: 'renew', renewCa: true, reason: 'CANotInBundle' };

  const leaf = parse(observed.certPem);
  if (!leaf) return { action: 'renew', renewCa: false, reason: 'NoServingCertificate' };
  if (!keyMatches(leaf, observed.keyPem)) return { action: 'renew', renewCa: false, reason: 'ServingKeyMismatch' };
  if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) return { action: 'renew', renewCa: false, reason: 'ServingNotFromCA' };
  if (sans(leaf).join(',') !== policy.dnsNames.map(sanForm).sort().join(',')) return { action: 'renew', renewCa: false, reason: 'DNSNamesChanged' };
  if (now < leaf.validFromDate) return { action: 'renew', renewCa: false, reason: 'ServingNotYetValid' };
  const leafRenewAt = renewPoint(leaf, policy.renewFraction);
  if (now >= leafRenewAt) return { action: 'renew', renewCa: false, reason: 'ServingRenewalDue' };
  return { action: 'keep', renewAt: leafRenewAt < caRenewAt ? leafRenewAt : caRenewAt };
}
