/**
 * The opt-in NetworkPolicy, checked by the object the operator creates (no CNI enforces it here):
 * a namespace labelled sluice.dev/network-policy=enabled gets one NetworkPolicy admitting only the
 * sidecar's ports (plus ports the namespace declares) to injected pods; the label removed, it goes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../test/helpers/eventually.ts';
import { isNotFound } from '../src/errors.ts';
import { NETWORK_POLICY_NAME, planNetworkPolicy } from '../src/plan-network-policy.ts';
import { startOperator, TestCluster, type StartedOperator } from './helpers/cluster.ts';

let cluster: TestCluster;
let op: StartedOperator;
const POLICY = `/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/${NETWORK_POLICY_NAME}`;

async function policy(): Promise<any | undefined> {
  try {
    return await cluster.client.get(POLICY);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

const ports = (p: any): number[] => p.spec.ingress[0].ports.map((x: { port: number }) => x.port);

describe('planNetworkPolicy', () => {
  const ns = (labels: Record<string, string>, annotations: Record<string, string> = {}) => ({ metadata: { name: 'shop', labels, annotations } });
  it('nothing for a namespace that does not ask', () => {
    expect(planNetworkPolicy(ns({}))).toEqual({ action: 'remove' });
    expect(planNetworkPolicy(ns({ 'sluice.dev/network-policy': 'yes' }))).toEqual({ action: 'remove' });
  });
  it('refuses declared ports it cannot read, with the annotation and an example', () => {
    const p = planNetworkPolicy(ns({ 'sluice.dev/network-policy': 'enabled' }, { 'sluice.dev/network-policy-ports': '9090,http' }));
    expect(p).toMatchObject({ action: 'invalid' });
    expect(p.action === 'invalid' && p.message).toMatch(/sluice.dev\/network-policy-ports: "http" is not a port number.*"9090,8443"/);
  });
});

beforeAll(async () => {
  cluster = await TestCluster.start();
  op = await startOperator(cluster);
  await eventually(async () => expect(await (await fetch(`${op.admin}/readyz`)).json()).toMatchObject({ isLeader: true }), { timeoutMs: 20_000 });
}, 60_000);
afterAll(async () => {
  await op?.operator.stop();
  await cluster?.stop();
});

describe('NetworkPolicy for namespaces that ask', () => {
  it('is not created unless the namespace asks', async () => {
    await sleep(500);
    expect(await policy()).toBeUndefined();
  });

  it('admits only the sidecar ports to injected pods once the namespace is labelled', async () => {
    await cluster.client.patch('/api/v1/namespaces/shop', { metadata: { labels: { 'sluice.dev/network-policy': 'enabled' } } });
    const p = await eventually(async () => {
      const got = await policy();
      expect(got).toBeDefined();
      return got;
    }, { timeoutMs: 15_000 });
    expect(p.spec.podSelector).toEqual({ matchExpressions: [{ key: 'sluice.dev/proxy', operator: 'Exists' }] });
    expect(p.spec.policyTypes).toEqual(['Ingress']);
    expect(ports(p)).toEqual([15080, 15081, 15000]);
    expect(p.spec.ingress[0].from).toBeUndefined();
    expect(p.metadata.labels['app.kubernetes.io/managed-by']).toBe('sluice-operator');
  });

  it('adds the ports the namespace declares', async () => {
    await cluster.client.patch('/api/v1/namespaces/shop', { metadata: { annotations: { 'sluice.dev/network-policy-ports': '9090, 8443' } } });
    await eventually(async () => expect(ports(await policy())).toEqual([15080, 15081, 15000, 8443, 9090]), { timeoutMs: 15_000 });
  });

  it('goes when the namespace stops asking', async () => {
    await cluster.client.patch('/api/v1/namespaces/shop', { metadata: { labels: { 'sluice.dev/network-policy': null } } });
    await eventually(async () => expect(await policy()).toBeUndefined(), { timeoutMs: 15_000 });
  });
});
