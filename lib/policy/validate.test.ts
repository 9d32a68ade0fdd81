import { readdirSync, readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { compilePlan } from './compile.ts';
import { parseDuration } from './duration.ts';
import { PolicyValidationError } from './errors.ts';
import { compileMatch, type RequestAttributes } from './match.ts';
import { parseLabels, selectorMatches } from './selector.ts';
import { validateResource } from './validate.ts';

const examples = parseAllDocuments(readFileSync(new URL('../../examples/policies.yaml', import.meta.url), 'utf8')).map((d) => d.toJS());

function issuesOf(doc: unknown): { path: string; message: string }[] {
  try {
    validateResource(doc);
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyValidationError);
    expect((err as PolicyValidationError).code).toBe('SLUICE_ERR_POLICY_INVALID');
    return [...(err as PolicyValidationError).issues];
  }
  return [];
}

const rlp = (rules: unknown[], extra: Record<string, unknown> = {}) => ({
  apiVersion: 'sluice.dev/v1alpha1', kind: 'RateLimitPolicy', metadata: { name: 'p', namespace: 'ns' },
  spec: { selector: { matchLabels: { app: 'a' } }, rules, ...extra },
});

describe('the API examples', () => {
  it('accepts every document of examples/policies.yaml', () => {
    expect(examples.map((d) => d.kind)).toEqual(['RateLimitPolicy', 'CircuitBreakerPolicy', 'TaskQueue', 'LeaderElection', 'FencingPolicy', 'Upstream']);
    for (const doc of examples) expect(issuesOf(doc)).toEqual([]);
  });

  it('compiles them into a frozen plan with the defaults their comments promise', () => {
    const plan = compilePlan(examples);
    expect(Object.isFrozen(plan)).toBe(true);
    const perUser = plan.rateLimits.find((r) => r.name === 'per-user')!;
    expect(perUser.limit).toEqual({ algorithm: 'TokenBucket', requests: 100, perMs: 1000, burst: 200 });
    expect(perUser.key).toEqual({ source: 'Header', name: 'x-user-id' });
    expect(perUser.scope).toBe('Local');
    const rpc = plan.rateLimits.find((r) => r.name === 'get-user-rpc')!;
    expect(rpc.limit).toMatchObject({ algorithm: 'SlidingWindow', requests: 5000, perMs: 60_000 });
    expect(rpc.scope).toBe('Global');
    expect(rpc.failureMode).toBe('Open');
    const ws = plan.rateLimits.find((r) => r.name === 'push-sockets')!;
    expect(ws.websocket).toEqual({ maxConnections: 10000, connectionsPerSecond: 200, messagesPerSecond: 20, maxMessageBytes: 65536, maxConnectionsPerKey: 20, connectionKey: { source: 'RemoteAddress', name: undefined } });
    const b = plan.breakers[0]!;
    expect(b.trip).toEqual({ consecutiveFailures: 5, failureRatePercent: 50, slowCallMs: 500, slowCallRatePercent: 80, minimumRequests: 20, windowMs: 10_000 });
    expect([b.openMs, b.maxOpenMs, b.halfOpen.maxProbes, b.halfOpen.successesToClose]).toEqual([30_000, 300_000, 3, 3]);
    expect(b.failure.timeoutMs).toBe(2000);
    expect(b.failure.httpStatuses[503]).toBe(1);
    expect(b.failure.httpStatuses[404]).toBe(0);
    expect(b.failure.grpcCodes[14]).toBe(1); // UNAVAILABLE
    expect(b.failure.grpcCodes[5]).toBe(0); // NOT_FOUND
    const q = plan.taskQueues[0]!;
    expect(q).toMatchObject({ stream: 'shop.orders', group: 'order-workers', concurrency: 16, visibilityTimeoutMs: 60_000, maxLen: 100000, deadLetterStream: 'shop.orders.dlq' });
    expect(q.retry).toMatchObject({ maxAttempts: 5, initialMs: 1000, maxMs: 60_000, multiplier: 2 });
    expect(plan.leaderElections[0]).toMatchObject({ id: 'shop/push-broadcaster', ttlMs: 10_000, renewEveryMs: 3_000 });
  });

  it('accepts a Global per-key connection quota and compiles its key (RemoteAddress by default)', () => {
    const doc = rlp([
      { name: 'by-address', match: { protocol: 'websocket' }, scope: 'Global', failureMode: 'Closed', websocket: { maxConnectionsPerKey: 3 } },
      { name: 'by-user', match: { protocol: 'websocket' }, websocket: { maxConnectionsPerKey: 2, key: { source: 'Header', name: 'X-User-Id' } } },
    ]);
    expect(issuesOf(doc)).toEqual([]);
    const [a, b] = compilePlan([doc]).rateLimits;
    expect(a!.scope).toBe('Global');
    expect(a!.websocket).toMatchObject({ maxConnectionsPerKey: 3, connectionKey: { source: 'RemoteAddress', name: undefined } });
    expect(b!.websocket).toMatchObject({ maxConnectionsPerKey: 2, connectionKey: { source: 'Header', name: 'x-user-id' } });
  });

  it('filters by the pod labels', () => {
    const plan = compilePlan(examples, { labels: { app: 'order-worker' } });
    expect(plan.rateLimits).toHaveLength(0);
    expect(plan.taskQueues.map((q) => q.id)).toEqual(['shop/orders']);
    expect(plan.producibleTaskQueues).toBeUndefined();
  });

  it('lists the TaskQueues the labels do not select as producible only', () => {
    const plan = compilePlan(examples, { labels: { app: 'user-service' } });
    expect(plan.taskQueues).toHaveLength(0);
    expect(plan.producibleTaskQueues?.map((q) => q.id)).toEqual(['shop/orders']);
  });
});

describe('invalid policies name the field and the reason', () => {
  const cases: [string, unknown, string, RegExp][] = [
    ['negative requests', rlp([{ name: 'a', limit: { requests: -1, per: '1s' } }]), 'spec.rules[0].limit.requests', /at least 1/],
    ['bad duration', rlp([{ name: 'a', limit: { requests: 1, per: '1 sec' } }]), 'spec.rules[0].limit.per', /not a duration/],
    ['unknown algorithm', rlp([{ name: 'a', limit: { requests: 1, per: '1s', algorithm: 'Leaky' } }]), 'spec.rules[0].limit.algorithm', /one of TokenBucket, SlidingWindow/],
    ['duplicate rule names', rlp([{ name: 'a', limit: { requests: 1, per: '1s' } }, { name: 'a', limit: { requests: 1, per: '1s' } }]), 'spec.rules[1].name', /unique/],
    ['websocket on http', rlp([{ name: 'a', match: { protocol: 'http' }, websocket: { maxConnections: 1 } }]), 'spec.rules[0].websocket', /protocol: websocket/],
    ['websocket key without maxConnectionsPerKey', rlp([{ name: 'a', match: { protocol: 'websocket' }, websocket: { maxConnections: 1, key: { source: 'Header', name: 'x-user' } } }]), 'spec.rules[0].websocket.key', /maxConnectionsPerKey/],
    ['websocket header key without a name', rlp([{ name: 'a', match: { protocol: 'websocket' }, websocket: { maxConnectionsPerKey: 2, key: { source: 'Header' } } }]), 'spec.rules[0].websocket.key.name', /required/],
    ['websocket key by path', rlp([{ name: 'a', match: { protocol: 'websocket' }, websocket: { maxConnectionsPerKey: 2, key: { source: 'Path' } } }]), 'spec.rules[0].websocket.key.source', /RemoteAddress, Header/],
    ['websocket quota of zero', rlp([{ name: 'a', match: { protocol: 'websocket' }, websocket: { maxConnectionsPerKey: 0 } }]), 'spec.rules[0].websocket.maxConnectionsPerKey', /at least 1/],
    ['Global websocket rule without a per-key quota', rlp([{ name: 'a', match: { protocol: 'websocket' }, scope: 'Global', websocket: { maxConnections: 5 } }]), 'spec.rules[0].scope', /maxConnectionsPerKey/],
    ['a rule with nothing to enforce', rlp([{ name: 'a' }]), 'spec.rules[0]', /needs a limit/],
    ['header key without a name', rlp([{ name: 'a', limit: { requests: 1, per: '1s' }, key: { source: 'Header' } }]), 'spec.rules[0].key.name', /required/],
    ['regex that does not compile', rlp([{ name: 'a', match: { paths: [{ type: 'RegularExpression', value: '(' }] }, limit: { requests: 1, per: '1s' } }]), 'spec.rules[0].match.paths[0].value', /regular expression/],
    ['grpc methods without grpc', rlp([{ name: 'a', match: { grpcMethods: ['a.B/C'] }, limit: { requests: 1, per: '1s' } }]), 'spec.rules[0].match.grpcMethods', /protocol: grpc/],
    ['failureMode on a Local rule', rlp([{ name: 'a', limit: { requests: 1, per: '1s' }, failureMode: 'Closed' }]), 'spec.rules[0].failureMode', /Global/],
    ['a typo in a field name', rlp([{ name: 'a', limits: { requests: 1, per: '1s' } }]), 'spec.rules[0].limits', /unknown field/],
    ['missing selector', { ...rlp([{ name: 'a', limit: { requests: 1, per: '1s' } }]), spec: { rules: [{ name: 'a', limit: { requests: 1, per: '1s' } }] } }, 'spec.selector', /required/],
    ['unknown mode', rlp([{ name: 'a', limit: { requests: 1, per: '1s' } }], { mode: 'Shadow' }), 'spec.mode', /Enforce, DryRun/],
    ['renewEvery not shorter than ttl', { apiVersion: 'sluice.dev/v1alpha1', kind: 'LeaderElection', metadata: { name: 'l' }, spec: { selector: {}, ttl: '3s', renewEvery: '3s' } }, 'spec.renewEvery', /shorter than spec.ttl/],
    ['breaker rate over 100', { apiVersion: 'sluice.dev/v1alpha1', kind: 'CircuitBreakerPolicy', metadata: { name: 'b' }, spec: { selector: {}, rules: [{ name: 'r', trip: { failureRatePercent: 150 } }] } }, 'spec.rules[0].trip.failureRatePercent', /at most 100/],
    ['unknown gRPC code', { apiVersion: 'sluice.dev/v1alpha1', kind: 'CircuitBreakerPolicy', metadata: { name: 'b' }, spec: { selector: {}, rules: [{ name: 'r', failureConditions: { grpcCodes: ['BROKEN'] } }] } }, 'spec.rules[0].failureConditions.grpcCodes[0]', /one of OK/],
    ['queue min above max', { apiVersion: 'sluice.dev/v1alpha1', kind: 'TaskQueue', metadata: { name: 'q' }, spec: { selector: {}, stream: 's', consumerGroup: 'g', delivery: { path: '/t' }, autoscale: { scaleTargetRef: { kind: 'Deployment', name: 'w' }, minReplicas: 5, maxReplicas: 2, targetLagPerReplica: 1 } } }, 'spec.autoscale.minReplicas', /maxReplicas/],
    ['dead-letter maxLen of zero', { apiVersion: 'sluice.dev/v1alpha1', kind: 'TaskQueue', metadata: { name: 'q' }, spec: { selector: {}, stream: 's', consumerGroup: 'g', delivery: { path: '/t' }, deadLetter: { stream: 'd', maxLen: 0 } } }, 'spec.deadLetter.maxLen', /at least 1/],
    ['dead-letter maxAge not a duration', { apiVersion: 'sluice.dev/v1alpha1', kind: 'TaskQueue', metadata: { name: 'q' }, spec: { selector: {}, stream: 's', consumerGroup: 'g', delivery: { path: '/t' }, deadLetter: { stream: 'd', maxAge: '7 days' } } }, 'spec.deadLetter.maxAge', /not a duration/],
    ['unknown durability', { apiVersion: 'sluice.dev/v1alpha1', kind: 'TaskQueue', metadata: { name: 'q' }, spec: { selector: {}, stream: 's', consumerGroup: 'g', delivery: { path: '/t' }, durability: 'Sync' } }, 'spec.durability', /Async, Replicated/],
    ['replicationTimeout without Replicated', { apiVersion: 'sluice.dev/v1alpha1', kind: 'TaskQueue', metadata: { name: 'q' }, spec: { selector: {}, stream: 's', consumerGroup: 'g', delivery: { path: '/t' }, replicationTimeout: '1s' } }, 'spec.replicationTimeout', /durability: Replicated/],
    ['replicationTimeout too long', { apiVersion: 'sluice.dev/v1alpha1', kind: 'TaskQueue', metadata: { name: 'q' }, spec: { selector: {}, stream: 's', consumerGroup: 'g', delivery: { path: '/t' }, durability: 'Replicated', replicationTimeout: '1m' } }, 'spec.replicationTimeout', /at most 5000ms/],
    ['wrong apiVersion', { ...rlp([{ name: 'a', limit: { requests: 1, per: '1s' } }]), apiVersion: 'sluice.dev/v1' }, 'apiVersion', /sluice.dev\/v1alpha1/],
  ];
  for (const [title, doc, path, message] of cases) {
    it(title, () => {
      const issues = issuesOf(doc);
      const hit = issues.find((i) => i.path === path);
      expect(hit, `issues: ${JSON.stringify(issues)}`).toBeDefined();
      expect(hit!.message).toMatch(message);
    });
  }

  it('agrees with the CRDs: every document of crds/invalid is refused here too', () => {
    const dir = new URL('../../crds/invalid/', import.meta.url);
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThan(10);
    for (const f of files) {
      const doc = parse(readFileSync(new URL(f, dir), 'utf8')) as unknown;
      expect(() => validateResource(doc), f).toThrow(PolicyValidationError);
    }
  });

  it('refuses a whole config when one document is bad, naming the resource', () => {
    const bad = rlp([{ name: 'a', limit: { requests: 0, per: '1s' } }]);
    expect(() => compilePlan([...examples, bad])).toThrow(/RateLimitPolicy ns\/p: spec.rules\[0\].limit.requests/);
  });

  it('refuses the same resource declared twice', () => {
    expect(() => compilePlan([examples[0], examples[0]])).toThrow(/declared twice/);
  });
});

describe('durations, selectors and matchers', () => {
  it('parses durations', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('10')).toBeUndefined();
    expect(parseDuration('-1s')).toBeUndefined();
  });

  it('matches label selectors like Kubernetes', () => {
    const labels = parseLabels('app=web,tier=api');
    expect(selectorMatches({ matchLabels: { app: 'web' } }, labels)).toBe(true);
    expect(selectorMatches({ matchLabels: { app: 'db' } }, labels)).toBe(false);
    expect(selectorMatches({ matchExpressions: [{ key: 'tier', operator: 'In', values: ['api', 'x'] }] }, labels)).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['api'] }] }, labels)).toBe(false);
    expect(selectorMatches({ matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] }, labels)).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: 'zone', operator: 'Exists' }] }, labels)).toBe(false);
    expect(() => parseLabels('novalue')).toThrow(RangeError);
  });

  const req = (over: Partial<RequestAttributes> & { headers?: Record<string, string> } = {}): RequestAttributes => ({
    protocol: 'http', method: 'GET', path: '/', ...over, header: (n) => over.headers?.[n],
  });

  it('matches paths at segment boundaries, regexes whole, gRPC services and headers', () => {
    const prefix = compileMatch({ paths: [{ type: 'Prefix', value: '/api/' }] });
    expect(prefix(req({ path: '/api/users' }))).toBe(true);
    expect(prefix(req({ path: '/api' }))).toBe(true);
    expect(prefix(req({ path: '/apix' }))).toBe(false);
    const re = compileMatch({ paths: [{ type: 'RegularExpression', value: '/u/[0-9]+' }] });
    expect(re(req({ path: '/u/42' }))).toBe(true);
    expect(re(req({ path: '/u/42/x' }))).toBe(false);
    const grpc = compileMatch({ protocol: 'grpc', grpcMethods: ['example.UserService/*', 'other.S/M'] });
    expect(grpc(req({ protocol: 'grpc', grpcMethod: 'example.UserService/GetUser' }))).toBe(true);
    expect(grpc(req({ protocol: 'grpc', grpcMethod: 'other.S/N' }))).toBe(false);
    expect(grpc(req({ grpcMethod: 'other.S/M' }))).toBe(false);
    const h = compileMatch({ methods: ['POST'], headers: [{ name: 'X-Tenant', value: 'a' }, { name: 'x-debug', type: 'Present' }] });
    expect(h(req({ method: 'POST', headers: { 'x-tenant': 'a', 'x-debug': '' } }))).toBe(true);
    expect(h(req({ method: 'POST', headers: { 'x-tenant': 'a' } }))).toBe(false);
    expect(h(req({ method: 'GET', headers: { 'x-tenant': 'a', 'x-debug': '1' } }))).toBe(false);
  });
});
