import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { compilePlan } from './compile.ts';
import { PolicyValidationError } from './errors.ts';
import { validateResource } from './validate.ts';

const examples = parseAllDocuments(readFileSync(new URL('../../examples/policies.yaml', import.meta.url), 'utf8')).map((d) => d.toJS());

const fp = (rules: unknown[]) => ({
  apiVersion: 'sluice.dev/v1alpha1', kind: 'FencingPolicy', metadata: { name: 'ledger', namespace: 'shop' },
  spec: { selector: { matchLabels: { app: 'ledger' } }, rules },
});
const rule = (over: Record<string, unknown> = {}) => ({
  name: 'writes',
  resource: { kind: 'LeaderElection', name: 'push-broadcaster' },
  token: { source: 'Header', name: 'sluice-fencing-token' },
  ...over,
});

function issuesOf(doc: unknown): { path: string; message: string }[] {
  try {
    validateResource(doc);
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyValidationError);
    return [...(err as PolicyValidationError).issues];
  }
  return [];
}

describe('FencingPolicy', () => {
  it('the example document is accepted and compiles to what its comments say', () => {
    const doc = examples.find((d) => d.kind === 'FencingPolicy');
    expect(issuesOf(doc)).toEqual([]);
    const plan = compilePlan(examples, { labels: { app: 'ledger' } });
    expect(plan.fencing).toHaveLength(1);
    const r = plan.fencing[0]!;
    expect(r).toMatchObject({
      id: 'shop/ledger/writes', namespace: 'shop', protocol: 'http',
      resource: { kind: 'LeaderElection', name: 'push-broadcaster' },
      token: { source: 'Header', name: 'sluice-fencing-token' },
      missingToken: 'Reject', failureMode: 'Closed',
    });
    const req = (method: string, path: string) => ({ protocol: 'http' as const, method, path, header: () => undefined });
    expect(r.matches(req('POST', '/ledger/entries'))).toBe(true);
    expect(r.matches(req('GET', '/ledger/entries'))).toBe(false);
    expect(r.matches(req('POST', '/other'))).toBe(false);
    // Other pods (the leader's own) are not fenced by it.
    expect(compilePlan(examples, { labels: { app: 'push-hub' } }).fencing).toHaveLength(0);
  });

  it('defaults: missing tokens are refused, unreachable lock nodes refuse; header names are lower-cased', () => {
    const plan = compilePlan([fp([rule({ token: { source: 'Header', name: 'X-Fence' } })])]);
    expect(plan.fencing[0]).toMatchObject({ missingToken: 'Reject', failureMode: 'Closed', token: { name: 'x-fence' } });
    expect(Object.isFrozen(plan.fencing[0])).toBe(true);
  });

  it('accepts a Lock resource and gRPC metadata', () => {
    const doc = fp([rule({ match: { protocol: 'grpc', grpcMethods: ['ledger.Ledger/Write'] }, resource: { kind: 'Lock', name: 'orders/batch-42' }, token: { source: 'GrpcMetadata', name: 'sluice-fencing-token' }, missingToken: 'Allow', failureMode: 'Open' })]);
    expect(issuesOf(doc)).toEqual([]);
  });

  const cases: [string, unknown, string, RegExp][] = [
    ['no resource', fp([rule({ resource: undefined })]), 'spec.rules[0].resource', /required/],
    ['unknown resource kind', fp([rule({ resource: { kind: 'Lease', name: 'x' } })]), 'spec.rules[0].resource.kind', /LeaderElection, Lock/],
    ['election name that is not a resource name', fp([rule({ resource: { kind: 'LeaderElection', name: 'Push_Broadcaster' } })]), 'spec.rules[0].resource.name', /does not match/],
    ['lock name with a brace', fp([rule({ resource: { kind: 'Lock', name: 'a{b}' } })]), 'spec.rules[0].resource.name', /does not match/],
    ['no token', fp([rule({ token: undefined })]), 'spec.rules[0].token', /required/],
    ['token without a name', fp([rule({ token: { source: 'Header' } })]), 'spec.rules[0].token.name', /required/],
    ['unknown token source', fp([rule({ token: { source: 'Cookie', name: 'x' } })]), 'spec.rules[0].token.source', /Header, GrpcMetadata/],
    ['gRPC metadata on http', fp([rule({ match: { protocol: 'http' }, token: { source: 'GrpcMetadata', name: 'x' } })]), 'spec.rules[0].token.source', /protocol: grpc/],
    ['a header on gRPC', fp([rule({ match: { protocol: 'grpc' } })]), 'spec.rules[0].token.source', /GrpcMetadata/],
    ['unknown missingToken', fp([rule({ missingToken: 'Ignore' })]), 'spec.rules[0].missingToken', /Reject, Allow/],
    ['unknown failureMode', fp([rule({ failureMode: 'Maybe' })]), 'spec.rules[0].failureMode', /Closed, Open/],
    ['a typo', fp([rule({ tokens: {} })]), 'spec.rules[0].tokens', /unknown field/],
    ['no rules', fp([]), 'spec.rules', /at least 1/],
    ['duplicate rule names', fp([rule(), rule()]), 'spec.rules[1].name', /unique/],
  ];
  for (const [title, doc, path, message] of cases) {
    it(`refuses ${title}, naming the field`, () => {
      const issues = issuesOf(doc);
      const hit = issues.find((i) => i.path === path);
      expect(hit, `issues: ${JSON.stringify(issues)}`).toBeDefined();
      expect(hit!.message).toMatch(message);
    });
  }
});
