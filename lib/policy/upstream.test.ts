import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { compilePlan } from './compile.ts';
import { PolicyValidationError } from './errors.ts';
import { isLoopbackHost, parseHostPort } from './upstream.ts';
import { validateResource } from './validate.ts';

const examples = parseAllDocuments(readFileSync(new URL('../../examples/policies.yaml', import.meta.url), 'utf8')).map((d) => d.toJS());

const ups = (spec: Record<string, unknown>, name = 'u') => ({
  apiVersion: 'sluice.dev/v1alpha1', kind: 'Upstream', metadata: { name, namespace: 'shop' },
  spec: { selector: {}, service: { name: 'user-service', port: 'grpc' }, protocol: 'grpc', listen: '127.0.0.1:16001', ...spec },
});

function issuesOf(doc: unknown): { path: string; message: string }[] {
  try {
    validateResource(doc);
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyValidationError);
    return [...(err as PolicyValidationError).issues];
  }
}

describe('Upstream', () => {
  it('compiles the example with the values its comments give and the defaults filled in', () => {
    const plan = compilePlan(examples, { labels: { app: 'order-api' } });
    expect(plan.upstreams).toHaveLength(1);
    expect(compilePlan(examples, { labels: { app: 'order-worker' } }).upstreams).toEqual([]);
    const u = plan.upstreams[0]!;
    expect(u).toMatchObject({
      id: 'shop/user-service', protocol: 'grpc', listen: { host: '127.0.0.1', port: 16001 },
      service: { name: 'user-service', port: 'grpc' },
      loadBalancer: { algorithm: 'LeastRequest', slowStartMs: 30_000 }, timeoutMs: 2000,
      outlierDetection: { consecutiveFailures: 5, intervalMs: 10_000, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionPercent: 50 },
      endpoints: [],
    });
    expect(u.retry).toMatchObject({ attempts: 3, perTryTimeoutMs: 500, backoff: { initialMs: 25, maxMs: 250 }, reset: true, connectFailure: true, budget: { percent: 20, minPerSecond: 10, windowMs: 10_000 } });
    expect(u.retry.grpcCodes[14]).toBe(1); // UNAVAILABLE
    expect(u.retry.grpcCodes[4]).toBe(0); // DEADLINE_EXCEEDED is never retried by default
    expect(u.retry.httpStatuses[503]).toBe(1);
    expect(u.retry.httpStatuses[500]).toBe(0);
    expect(compilePlan(examples, { labels: { app: 'user-service' } }).upstreams).toHaveLength(0);
  });

  it('retries nothing unless asked, and defaults a retry block to two tries', () => {
    const bare = compilePlan([ups({})]).upstreams[0]!;
    expect(bare.retry.attempts).toBe(1);
    expect(bare.timeoutMs).toBe(15_000);
    expect(compilePlan([ups({ retry: {} })]).upstreams[0]!.retry.attempts).toBe(2);
  });

  it('accepts standalone endpoints instead of a service', () => {
    const doc = ups({ endpoints: ['127.0.0.1:50051', 'users.internal:50051', '[::1]:50052'] });
    delete (doc.spec as Record<string, unknown>).service;
    expect(issuesOf(doc)).toEqual([]);
    expect(compilePlan([doc]).upstreams[0]!.endpoints).toEqual(['127.0.0.1:50051', 'users.internal:50051', '[::1]:50052']);
  });

  const cases: [string, unknown, string, RegExp][] = [
    ['listen off loopback', ups({ listen: '0.0.0.0:16001' }), 'spec.listen', /loopback/],
    ['listen without a port', ups({ listen: '127.0.0.1' }), 'spec.listen', /host:port/],
    ['no service and no endpoints', { ...ups({}), spec: { selector: {}, protocol: 'grpc', listen: '127.0.0.1:1' } }, 'spec.service', /required/],
    ['a bad endpoint', ups({ endpoints: ['10.0.0.1'] }), 'spec.endpoints[0]', /host:port/],
    ['an endpoint port out of range', ups({ endpoints: ['10.0.0.1:70000'] }), 'spec.endpoints[0]', /host:port/],
    ['unknown protocol', ups({ protocol: 'websocket' }), 'spec.protocol', /grpc, http/],
    ['unknown algorithm', ups({ loadBalancer: { algorithm: 'Random' } }), 'spec.loadBalancer.algorithm', /LeastRequest, RoundRobin/],
    ['too many attempts', ups({ retry: { attempts: 9 } }), 'spec.retry.attempts', /at most 5/],
    ['per-try timeout past the whole timeout', ups({ timeout: '1s', retry: { perTryTimeout: '2s' } }), 'spec.retry.perTryTimeout', /spec.timeout/],
    ['unknown retry code', ups({ retry: { retryOn: { grpcCodes: ['FLAKY'] } } }), 'spec.retry.retryOn.grpcCodes[0]', /one of OK/],
    ['a bad retry status', ups({ retry: { retryOn: { httpStatuses: ['6xx'] } } }), 'spec.retry.retryOn.httpStatuses[0]', /does not match/],
    ['budget over 100 %', ups({ retry: { budget: { percent: 150 } } }), 'spec.retry.budget.percent', /at most 100/],
    ['backoff max below initial', ups({ retry: { backoff: { initial: '1s', max: '10ms' } } }), 'spec.retry.backoff.max', /initial/],
    ['ejection cap below base', ups({ outlierDetection: { baseEjectionTime: '30s', maxEjectionTime: '10s' } }), 'spec.outlierDetection.maxEjectionTime', /baseEjectionTime/],
    ['a typo', ups({ loadbalancer: {} }), 'spec.loadbalancer', /unknown field/],
    ['a named port that is not a name', ups({ service: { name: 'x', port: 'GRPC!' } }), 'spec.service.port', /does not match/],
  ];
  for (const [title, doc, path, message] of cases) {
    it(`refuses ${title} at ${path}`, () => {
      const issues = issuesOf(doc);
      const hit = issues.find((i) => i.path === path);
      expect(hit, JSON.stringify(issues)).toBeDefined();
      expect(hit!.message).toMatch(message);
    });
  }

  it('refuses two Upstreams of one pod on the same listen address, naming both', () => {
    expect(() => compilePlan([ups({}, 'a'), ups({ listen: 'localhost:16001' }, 'b')])).toThrow(/Upstream shop\/b: spec.listen: localhost:16001 is already the listen address of Upstream shop\/a/);
    // Different pods may use the same port: only what selects one pod is compared.
    const apart = [ups({ selector: { matchLabels: { app: 'x' } } }, 'a'), ups({ selector: { matchLabels: { app: 'y' } } }, 'b')];
    expect(compilePlan(apart, { labels: { app: 'x' } }).upstreams.map((u) => u.name)).toEqual(['a']);
  });

  it('lets rate-limit and breaker rules name an upstream, and checks the name', () => {
    const rlp = (upstream: unknown) => ({ apiVersion: 'sluice.dev/v1alpha1', kind: 'RateLimitPolicy', metadata: { name: 'p', namespace: 'shop' }, spec: { selector: {}, rules: [{ name: 'r', match: { upstream }, limit: { requests: 1, per: '1s' } }] } });
    expect(issuesOf(rlp('user-service'))).toEqual([]);
    expect(issuesOf(rlp('User Service')).map((i) => i.path)).toEqual(['spec.rules[0].match.upstream']);
    const plan = compilePlan([rlp('user-service')]);
    const attrs = { protocol: 'grpc' as const, method: 'POST', path: '/a.B/C', header: () => undefined };
    expect(plan.rateLimits[0]!.matches({ ...attrs, upstream: 'shop/user-service' })).toBe(true);
    expect(plan.rateLimits[0]!.matches({ ...attrs, upstream: 'other/user-service' })).toBe(false);
    expect(plan.rateLimits[0]!.matches(attrs)).toBe(false);
    // A rule that names no upstream is for inbound traffic only.
    const inbound = compilePlan([{ ...rlp('x'), spec: { selector: {}, rules: [{ name: 'r', limit: { requests: 1, per: '1s' } }] } }]);
    expect(inbound.rateLimits[0]!.matches(attrs)).toBe(true);
    expect(inbound.rateLimits[0]!.matches({ ...attrs, upstream: 'shop/user-service' })).toBe(false);
  });

  it('knows loopback and host:port', () => {
    expect(isLoopbackHost('127.0.0.2')).toBe(true);
    expect(isLoopbackHost('[::1]')).toBe(true);
    expect(isLoopbackHost('10.0.0.1')).toBe(false);
    expect(parseHostPort('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(parseHostPort('a.b:0')).toBeUndefined();
  });
});
