/**
 * Reviews the chart's RBAC the way a security reviewer would: every rendered Role and ClusterRole,
 * under every combination of optional values, must grant no wildcards and none of the verbs that
 * let a subject grant itself more (escalate, bind) or act as someone else (impersonate). The
 * checker is tested against bad roles first, so this test can fail.
 */
import { describe, expect, it } from 'vitest';
import { renderChart, type Doc } from './render-chart.ts';

const FORBIDDEN_VERBS = new Set(['escalate', 'bind', 'impersonate']);

interface Rule { apiGroups?: string[]; resources?: string[]; verbs?: string[]; resourceNames?: string[]; nonResourceURLs?: string[] }

/** Every problem in a role, as readable strings; empty when the role is acceptable. */
function rbacViolations(role: Doc): string[] {
  const out: string[] = [];
  const where = `${role.kind}/${role.metadata.name}`;
  for (const [i, r] of ((role.rules ?? []) as Rule[]).entries()) {
    for (const field of ['apiGroups', 'resources', 'verbs', 'resourceNames', 'nonResourceURLs'] as const) {
      for (const v of r[field] ?? []) if (v.includes('*')) out.push(`${where} rule ${i}: wildcard "${v}" in ${field}`);
    }
    for (const v of r.verbs ?? []) if (FORBIDDEN_VERBS.has(v.toLowerCase())) out.push(`${where} rule ${i}: forbidden verb "${v}"`);
    if (r.nonResourceURLs?.length) out.push(`${where} rule ${i}: nonResourceURLs are not needed by the operator`);
    // Cluster-wide read of Secrets is read access to every credential in the cluster.
    if (role.kind === 'ClusterRole' && r.resources?.includes('secrets')) out.push(`${where} rule ${i}: secrets in a ClusterRole`);
  }
  if (role.aggregationRule) out.push(`${where}: aggregationRule pulls in rules this review cannot see`);
  return out;
}

const VALUE_SETS: string[][] = [
  [],
  ['metrics.serviceMonitor.enabled=true', 'metrics.podMonitor.enabled=true', 'prometheusRule.enabled=true'],
  ['redis.urlSecret.name=redis-auth', 'webhook.annotationOptIn.enabled=false', 'networkPolicy.enabled=false'],
];

describe('the RBAC checker', () => {
  const role = (rules: Rule[], kind = 'ClusterRole'): Doc => ({ apiVersion: 'rbac.authorization.k8s.io/v1', kind, metadata: { name: 'x' }, rules });
  it.each<[string, Rule[], string, RegExp]>([
    ['wildcard verb', [{ apiGroups: [''], resources: ['pods'], verbs: ['*'] }], 'ClusterRole', /wildcard "\*" in verbs/],
    ['wildcard resource', [{ apiGroups: ['sluice.dev'], resources: ['*'], verbs: ['get'] }], 'Role', /wildcard "\*" in resources/],
    ['wildcard subresource', [{ apiGroups: ['sluice.dev'], resources: ['*/status'], verbs: ['get'] }], 'Role', /wildcard "\*\/status"/],
    ['wildcard group', [{ apiGroups: ['*'], resources: ['pods'], verbs: ['get'] }], 'Role', /in apiGroups/],
    ['escalate', [{ apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], verbs: ['escalate'] }], 'ClusterRole', /forbidden verb "escalate"/],
    ['bind', [{ apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles'], verbs: ['bind'] }], 'Role', /forbidden verb "bind"/],
    ['impersonate', [{ apiGroups: [''], resources: ['serviceaccounts'], verbs: ['impersonate'] }], 'ClusterRole', /forbidden verb "impersonate"/],
    ['cluster-wide secrets', [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }], 'ClusterRole', /secrets in a ClusterRole/],
  ])('flags %s', (_name, rules, kind, message) => {
    expect(rbacViolations(role(rules, kind)).join('\n')).toMatch(message);
  });
  it('accepts a narrow role', () => {
    expect(rbacViolations(role([{ apiGroups: [''], resources: ['secrets'], resourceNames: ['tls'], verbs: ['get', 'update'] }], 'Role'))).toEqual([]);
  });
});

describe('charts/sluice RBAC', () => {
  it.each(VALUE_SETS.map((v) => [v.join(' ') || 'defaults', v] as const))('has no wildcards or escalation verbs (%s)', async (_name, values) => {
    const docs = await renderChart(values);
    const roles = docs.filter((d) => d.kind === 'Role' || d.kind === 'ClusterRole');
    expect(roles.length).toBeGreaterThanOrEqual(2);
    expect(roles.flatMap(rbacViolations)).toEqual([]);
  });

  it('names the single webhook configuration and certificate Secret it may change', async () => {
    const docs = await renderChart();
    const rules = docs.filter((d) => d.kind === 'Role' || d.kind === 'ClusterRole').flatMap((d) => d.rules as Rule[]);
    const mwc = rules.filter((r) => r.resources?.includes('mutatingwebhookconfigurations'));
    expect(mwc).toEqual([{ apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: ['sluice-sidecar-injector'], verbs: ['get', 'patch'] }]);
    const secretUpdates = rules.filter((r) => r.resources?.includes('secrets') && r.verbs?.some((v) => v !== 'create'));
    expect(secretUpdates.every((r) => JSON.stringify(r.resourceNames) === JSON.stringify(['sluice-webhook-tls']))).toBe(true);
    // Bindings go to the chart's own ServiceAccount only.
    for (const b of docs.filter((d) => d.kind === 'RoleBinding' || d.kind === 'ClusterRoleBinding')) {
      expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: 'sluice', namespace: 'sluice-system' }]);
    }
  });
});
