/**
 * PolicyDiscovery over TLS: real kube-apiserver (test/cluster), in-process operator with a
 * certificate from the operator's own CA code (the webhook's, with the discovery Service in its
 * SANs), in-process sidecars with real app servers.
 *   - a sidecar given the CA connects, verifies the discovery Service name, gets snapshots;
 *   - a sidecar with another CA, the wrong server name, or no CA (plaintext) never connects, and
 *     says why in /readyz (lastError) while it keeps retrying;
 *   - a rotated serving certificate rebinds the same port: the sidecar reconnects on its own;
 *   - after a CA rotation, a sidecar still holding only the old CA cannot reconnect (the
 *     documented trade-off of the env-var CA), while one given the new bundle can.
 */
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../test/helpers/eventually.ts';
import { issueWebhookCerts } from '../src/certs/issue-certs.ts';
import { certPolicy } from '../src/certs/rotation-plan.ts';
import type { WebhookCerts } from '../src/certs/webhook-certs.ts';
import { serviceDnsNames } from '../src/injection/start-injection.ts';
import { condition, rateLimitPolicy, startOperator, startPodWithSidecar, statuses, TestCluster, type PodWithSidecar, type StartedOperator } from './helpers/cluster.ts';

const NS = 'sluice-system';
const SERVER_NAME = `sluice-discovery.${NS}.svc`;
const policy = certPolicy({ dnsNames: serviceDnsNames(['sluice-webhook', 'sluice-discovery'], NS), caCommonName: 'sluice-webhook.sluice-system webhook CA' });

let cluster: TestCluster;
let op: StartedOperator;
let certs: WebhookCerts;
const pods: PodWithSidecar[] = [];

/** The certificate the discovery port presents to a fresh handshake. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername: SERVER_NAME, ALPNProtocols: ['h2'], ca: certs.caBundlePem }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.destroy();
      resolve(serial);
    });
    s.on('error', reject);
  });
}

async function readyz(p: PodWithSidecar): Promise<{ status: number; operator: { connected: boolean; tls: boolean; lastError: string | null } }> {
  const res = await fetch(`${p.admin}/readyz`);
  const body = (await res.json()) as { checks: { name: string; details: { connected: boolean; tls: boolean; lastError: string | null } }[] };
  return { status: res.status, operator: body.checks.find((c) => c.name === 'operator')!.details };
}

async function start(name: string, tls: { operatorCa?: string; operatorServerName?: string }): Promise<PodWithSidecar> {
  const p = await startPodWithSidecar(cluster, op.address, 'shop', name, { app: 'web' }, tls);
  pods.push(p);
  return p;
}

beforeAll(async () => {
  cluster = await TestCluster.start();
  certs = issueWebhookCerts(undefined, true, policy, new Date());
  op = await startOperator(cluster, {}, { certificate: certs });
});

afterAll(async () => {
  for (const p of pods) await p.stop();
  await op?.operator.stop();
  await cluster?.stop();
});

describe('PolicyDiscovery over TLS', () => {
  it('serves TLS only, with a certificate for the discovery Service', async () => {
    expect(op.operator.discovery.tls).toBe(true);
    expect(await servedSerial(op.operator.discovery.port)).toMatch(/^[0-9A-F]+$/);
  });

  it('a sidecar with the operator CA connects, gets its snapshot and enforces policies', async () => {
    const p = await start('tls-1', { operatorCa: certs.caBundlePem, operatorServerName: SERVER_NAME });
    await eventually(async () => {
      const r = await readyz(p);
      expect(r.status).toBe(200);
      expect(r.operator).toMatchObject({ connected: true, tls: true, lastError: null });
    }, { timeoutMs: 10_000 });
    await cluster.apply(rateLimitPolicy('tls-limit', { requests: 1 }));
    await eventually(async () => {
      const s = await cluster.getStatus('ratelimitpolicies', 'shop', 'tls-limit');
      expect(condition(s, 'Programmed')).toMatchObject({ status: 'True' });
    }, { timeoutMs: 10_000 });
    expect(await statuses(p.url, 2)).toEqual([200, 429]);
  });

  it.each([
    { name: 'another CA', tls: () => ({ operatorCa: issueWebhookCerts(undefined, true, policy, new Date()).caBundlePem, operatorServerName: SERVER_NAME }), error: /UNAVAILABLE.*unable to verify the first certificate/ },
    { name: 'the wrong server name', tls: () => ({ operatorCa: certs.caBundlePem, operatorServerName: 'sluice-discovery.elsewhere.svc' }), error: /UNAVAILABLE.*ERR_TLS_CERT_ALTNAME_INVALID/ },
    { name: 'no CA (plaintext)', tls: () => ({}), error: /UNAVAILABLE: No connection established/ },
  ])('a sidecar with $name cannot connect and reports why', async ({ name, tls, error }) => {
    const before = op.operator.discovery.connected;
    const p = await start(`bad-${name.replace(/[^a-z]/g, '')}`.slice(0, 40), tls());
    await eventually(() => expect(p.sidecar.discovery!.reconnects).toBeGreaterThanOrEqual(2), { timeoutMs: 10_000 });
    const r = await readyz(p);
    expect(r.status).toBe(503); // never got a config
    expect(r.operator.connected).toBe(false);
    expect(r.operator.lastError).toMatch(error);
    expect(p.sidecar.discovery!.snapshots).toBe(0);
    expect(op.operator.discovery.connected).toBe(before);
    await p.stop();
    pods.splice(pods.indexOf(p), 1);
  });

  it('a rotated serving certificate rebinds the same port; the sidecar reconnects by itself', { timeout: 30_000 }, async () => {
    const p = pods.find((x) => x.pod.metadata.name === 'tls-1')!;
    const port = op.operator.discovery.port;
    const oldSerial = await servedSerial(port);
    const reconnects = p.sidecar.discovery!.reconnects;
    certs = issueWebhookCerts(certs, false, policy, new Date());
    await op.operator.discovery.setCertificate(certs);
    expect(op.operator.discovery.port).toBe(port);
    expect(op.operator.discovery.rebinds).toBe(1);
    expect(await servedSerial(port)).not.toBe(oldSerial);
    await eventually(async () => {
      expect(p.sidecar.discovery!.reconnects).toBeGreaterThan(reconnects);
      expect((await readyz(p)).operator).toMatchObject({ connected: true, tls: true });
      expect(op.operator.discovery.connected).toBe(1);
    }, { timeoutMs: 15_000 });
    // Same policies, same snapshot: still enforced (the limit of 1 is used up).
    expect(await statuses(p.url, 1)).toEqual([429]);
  });

  it('after a CA rotation, a sidecar pinned to the old CA cannot reconnect until restarted (documented); one with the new bundle can', { timeout: 30_000 }, async () => {
    const old = pods.find((x) => x.pod.metadata.name === 'tls-1')!;
    certs = issueWebhookCerts(certs, true, policy, new Date());
    await op.operator.discovery.setCertificate(certs);
    await eventually(async () => {
      const r = await readyz(old);
      expect(r.operator.connected).toBe(false);
      expect(r.operator.lastError).toMatch(/UNAVAILABLE/);
    }, { timeoutMs: 10_000 });
    // It keeps enforcing its last snapshot meanwhile.
    expect(await statuses(old.url, 1)).toEqual([429]);
    const fresh = await start('tls-2', { operatorCa: certs.caBundlePem, operatorServerName: SERVER_NAME });
    await eventually(async () => expect((await readyz(fresh)).operator).toMatchObject({ connected: true, tls: true }), { timeoutMs: 10_000 });
  });
});
