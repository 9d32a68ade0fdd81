/**
 * Carries out a rotation plan: a new CA when the plan says so (keeping the earlier CAs in the
 * bundle until they expire), and always a new serving certificate. No I/O; key generation is the
 * only side effect.
 */
import { X509Certificate } from 'node:crypto';
import type { CertPolicy } from './rotation-plan.ts';
import { nextCaBundle, type WebhookCerts } from './webhook-certs.ts';
import { createCa, createServingCert } from './x509.ts';

export function issueWebhookCerts(observed: WebhookCerts | undefined, renewCa: boolean, policy: CertPolicy, now: Date): WebhookCerts {
  const notBefore = new Date(now.getTime() - policy.backdateMs);
  let caCertPem: string;
  let caKeyPem: string;
  let caBundlePem: string;
  if (renewCa || !observed) {
    const ca = createCa(policy.caCommonName, { notBefore, notAfter: new Date(now.getTime() + policy.caLifetimeMs) });
    caCertPem = ca.certPem;
    caKeyPem = ca.keyPem;
    caBundlePem = nextCaBundle(ca.certPem, observed?.caBundlePem ?? '', now);
  } else {
    ({ caCertPem, caKeyPem, caBundlePem } = observed);
  }
  // A serving certificate never outlives its CA: the API server would stop trusting it early.
  const caNotAfter = new X509Certificate(caCertPem).validToDate.getTime();
  const notAfter = new Date(Math.min(now.getTime() + policy.servingLifetimeMs, caNotAfter));
  const serving = createServingCert({ certPem: caCertPem, keyPem: caKeyPem }, policy.dnsNames, { notBefore, notAfter });
  return { caCertPem, caKeyPem, certPem: serving.certPem, keyPem: serving.keyPem, caBundlePem };
}
