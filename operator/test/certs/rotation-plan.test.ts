import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { caBundlePatch } from '../../src/certs/ca-bundle-patch.ts';
import { issueWebhookCerts } from '../../src/certs/issue-certs.ts';
import { certPolicy, planRotation } from '../../src/certs/rotation-plan.ts';
import { certsFromSecretData, certsToSecretData, splitPem, type WebhookCerts } from '../../src/certs/webhook-certs.ts';
import { createCa } from '../../src/certs/x509.ts';

const HOUR = 3_600_000;
const DNS = ['sluice-webhook.sluice-system.svc', 'sluice-webhook.sluice-system.svc.cluster.local'];
// Serving certificates live 30h and are renewed at 20h; the CA lives 300h and is renewed at 200h.
const policy = certPolicy({ dnsNames: DNS, caCommonName: 'test CA', caLifetimeMs: 300 * HOUR, servingLifetimeMs: 30 * HOUR, backdateMs: 0 });
const t0 = new Date(Math.floor(Date.now() / 1000) * 1000);
const at = (hours: number) => new Date(t0.getTime() + hours * HOUR);
const fresh = issueWebhookCerts(undefined, true, policy, t0);

describe('planRotation', () => {
  const cases: { name: string; certs: WebhookCerts | undefined; now: Date; want: ReturnType<typeof planRotation> }[] = [
    { name: 'no Secret yet', certs: undefined, now: t0, want: { action: 'renew', renewCa: true, reason: 'NoCA' } },
    { name: 'fresh certificates', certs: fresh, now: at(1), want: { action: 'keep', renewAt: at(20) } },
    { name: 'just before 2/3 of the serving lifetime', certs: fresh, now: at(19.9), want: { action: 'keep', renewAt: at(20) } },
    { name: 'at 2/3 of the serving lifetime', certs: fresh, now: at(20), want: { action: 'renew', renewCa: false, reason: 'ServingRenewalDue' } },
    { name: 'at 2/3 of the CA lifetime', certs: fresh, now: at(200), want: { action: 'renew', renewCa: true, reason: 'CARenewalDue' } },
    { name: 'CA key does not match', certs: { ...fresh, caKeyPem: createCa('x', { notBefore: t0, notAfter: at(1) }).keyPem }, now: at(1), want: { action: 'renew', renewCa: true, reason: 'CAInvalid' } },
    { name: 'garbage serving certificate', certs: { ...fresh, certPem: 'nope' }, now: at(1), want: { action: 'renew', renewCa: false, reason: 'NoServingCertificate' } },
    { name: 'serving key swapped', certs: { ...fresh, keyPem: issueWebhookCerts(fresh, false, policy, t0).keyPem }, now: at(1), want: { action: 'renew', renewCa: false, reason: 'ServingKeyMismatch' } },
    { name: 'serving certificate from another CA', certs: { ...fresh, ...pick(issueWebhookCerts(undefined, true, policy, t0)) }, now: at(1), want: { action: 'renew', renewCa: false, reason: 'ServingNotFromCA' } },
    { name: 'service renamed', certs: fresh, now: at(1), want: { action: 'renew', renewCa: false, reason: 'DNSNamesChanged' } },
    { name: 'CA missing from the bundle', certs: { ...fresh, caBundlePem: '' }, now: at(1), want: { action: 'renew', renewCa: true, reason: 'CANotInBundle' } },
  ];
  it.each(cases)('$name', ({ name, certs, now, want }) => {
    const p = name === 'service renamed' ? certPolicy({ ...policy, dnsNames: ['other.sluice-system.svc'] }) : policy;
    expect(planRotation(certs, p, now)).toEqual(want);
  });

  it('renews the CA before any serving certificate it signed can outlive it', () => {
    // At 190h the serving certificate is renewed; it may not run past the CA's 300h.
    const late = issueWebhookCerts(fresh, false, policy, at(190));
    expect(planRotation(late, policy, at(195))).toEqual({ action: 'keep', renewAt: at(200) });
    const clamped = issueWebhookCerts(fresh, false, policy, at(290));
    expect(new X509Certificate(clamped.certPem).validToDate).toEqual(at(300));
  });

  it('keeps the previous CA in the bundle after a CA rotation, newest first', () => {
    const rotated = issueWebhookCerts(fresh, true, policy, at(200));
    const bundle = splitPem(rotated.caBundlePem);
    expect(bundle).toHaveLength(2);
    expect(bundle[0]).toBe(rotated.caCertPem);
    expect(bundle[1]).toBe(fresh.caCertPem);
    expect(planRotation(rotated, policy, at(201))).toMatchObject({ action: 'keep' });
    // Once the old CA has expired it leaves the bundle at the next CA rotation.
    const again = issueWebhookCerts(rotated, true, policy, at(400));
    expect(splitPem(again.caBundlePem).map((p) => new X509Certificate(p).fingerprint256)).toEqual(
      [again.caCertPem, rotated.caCertPem].map((p) => new X509Certificate(p).fingerprint256),
    );
  });

  it('round-trips through Secret data', () => {
    expect(certsFromSecretData(certsToSecretData(fresh))).toEqual(fresh);
  });

  it('refuses policies that would renew forever or never', () => {
    expect(() => certPolicy({ dnsNames: DNS, caCommonName: 'x', renewFraction: 1 })).toThrow(RangeError);
    expect(() => certPolicy({ dnsNames: DNS, caCommonName: 'x', servingLifetimeMs: 2000, backdateMs: 60_000 })).toThrow(/backdateMs/);
    expect(() => certPolicy({ dnsNames: [], caCommonName: 'x' })).toThrow(/DNS name/);
  });
});

describe('caBundlePatch', () => {
  const bundle = fresh.caBundlePem;
  const b64 = Buffer.from(bundle).toString('base64');
  it('adds the bundle to every webhook that lacks it, guarded by the webhook name', () => {
    const ops = caBundlePatch({ metadata: { name: 'inj' }, webhooks: [
      { name: 'a.sluice.dev', clientConfig: {} },
      { name: 'b.sluice.dev', clientConfig: { caBundle: b64 } },
      { name: 'c.sluice.dev' },
    ] }, bundle);
    expect(ops).toEqual([
      { op: 'test', path: '/webhooks/0/name', value: 'a.sluice.dev' },
      { op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: b64 },
      { op: 'test', path: '/webhooks/2/name', value: 'c.sluice.dev' },
      { op: 'add', path: '/webhooks/2/clientConfig', value: { caBundle: b64 } },
    ]);
  });
  it('is empty when every webhook already trusts the bundle', () => {
    expect(caBundlePatch({ metadata: { name: 'inj' }, webhooks: [{ name: 'a', clientConfig: { caBundle: b64 } }] }, bundle)).toEqual([]);
  });
});

function pick(c: WebhookCerts) {
  return { certPem: c.certPem, keyPem: c.keyPem };
}
