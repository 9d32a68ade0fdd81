/**
 * FencingPolicy: the protected service's side of a fencing token. Its sidecar refuses a request
 * whose token (from a header or gRPC metadata) is lower than the newest one it accepted for the
 * named lease or lock, so a holder that paused past its lease cannot act after its successor did.
 *
 * Kept in one file — types, validation, compilation — so the kind reads on its own; validate.ts,
 * compile.ts and plan.ts each only call in here.
 */
import { Checker, join } from './checker.ts';
import { compileMatch, type Matcher } from './match.ts';
import { resourceKey, type API_VERSION, type LabelSelector, type ObjectMeta, type Protocol, type RouteMatch } from './types.ts';

export type FencedResourceKind = 'LeaderElection' | 'Lock';
export type FencingTokenSource = 'Header' | 'GrpcMetadata';
export type MissingTokenAction = 'Reject' | 'Allow';

export interface FencingRuleSpec {
  name: string;
  match?: RouteMatch;
  /** Whose tokens count: a LeaderElection, or an app lock (`/v1/locks/{name}`), in the policy's namespace. */
  resource: { kind: FencedResourceKind; name: string };
  /** Where a request carries its token. */
  token: { source: FencingTokenSource; name: string };
  /** A matching request without a token: refused with 428 (default), or forwarded unchecked. */
  missingToken?: MissingTokenAction;
  /** The lock nodes cannot decide: Closed (default) refuses, Open forwards unchecked. */
  failureMode?: 'Open' | 'Closed';
}

export interface FencingPolicySpec {
  selector: LabelSelector;
  rules: FencingRuleSpec[];
}

export interface FencingPolicy {
  apiVersion: typeof API_VERSION;
  kind: 'FencingPolicy';
  metadata: ObjectMeta;
  spec: FencingPolicySpec;
}

/** One compiled rule: what the protected sidecar reads per request. */
export interface FencingRule {
  /** `namespace/policy/rule`, as in metrics and logs. */
  readonly id: string;
  readonly policy: string;
  readonly name: string;
  readonly protocol: Protocol | undefined;
  readonly matches: Matcher;
  readonly namespace: string;
  readonly resource: { readonly kind: FencedResourceKind; readonly name: string };
  /** Lower-case header / metadata name. */
  readonly token: { readonly source: FencingTokenSource; readonly name: string };
  readonly missingToken: MissingTokenAction;
  readonly failureMode: 'Open' | 'Closed';
  readonly source: FencingRuleSpec;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** App lock names are free text on the local API; inside a Redis hash tag they must not hold braces. */
const LOCK_NAME = /^[^\s{}]+$/;

type Obj = Record<string, unknown>;

export interface SpecCheckers {
  selector(c: Checker, v: unknown, path: string): unknown;
  match(c: Checker, v: unknown, path: string): RouteMatch | undefined;
  rules(c: Checker, spec: Obj, each: (rule: Obj, path: string) => void): void;
}

/** What the CRD says, and what it cannot: a token source that fits the protocol. */
export function checkFencingPolicySpec(c: Checker, spec: Obj, shared: SpecCheckers): void {
  c.known(spec, 'spec', ['selector', 'rules']);
  shared.selector(c, spec.selector, 'spec.selector');
  shared.rules(c, spec, (rule, path) => {
    c.known(rule, path, ['name', 'match', 'resource', 'token', 'missingToken', 'failureMode']);
    const match = shared.match(c, rule.match, join(path, 'match'));
    const res = c.object(rule.resource, join(path, 'resource'), true);
    if (res) {
      const rp = join(path, 'resource');
      c.known(res, rp, ['kind', 'name']);
      const kind = c.string(res.kind, join(rp, 'kind'), { required: true, oneOf: ['LeaderElection', 'Lock'] });
      if (kind === 'Lock') c.string(res.name, join(rp, 'name'), { required: true, pattern: LOCK_NAME, maxLength: 256 });
      else c.string(res.name, join(rp, 'name'), { required: true, pattern: DNS_SUBDOMAIN, maxLength: 253 });
    }
    const token = c.object(rule.token, join(path, 'token'), true);
    if (token) {
      const tp = join(path, 'token');
      c.known(token, tp, ['source', 'name']);
      const source = c.string(token.source, join(tp, 'source'), { required: true, oneOf: ['Header', 'GrpcMetadata'] });
      c.string(token.name, join(tp, 'name'), { required: true, pattern: HEADER_NAME, maxLength: 128 });
      if (source === 'GrpcMetadata' && match?.protocol !== 'grpc') c.fail(join(tp, 'source'), 'GrpcMetadata needs match.protocol: grpc');
      if (source === 'Header' && match?.protocol === 'grpc') c.fail(join(tp, 'source'), 'gRPC calls carry the token in metadata: use source GrpcMetadata');
    }
    c.string(rule.missingToken, join(path, 'missingToken'), { oneOf: ['Reject', 'Allow'] });
    c.string(rule.failureMode, join(path, 'failureMode'), { oneOf: ['Closed', 'Open'] });
  });
}

export function compileFencingPolicy(p: FencingPolicy): FencingRule[] {
  const policy = resourceKey(p);
  const namespace = p.metadata.namespace ?? 'default';
  return p.spec.rules.map((r) => ({
    id: `${policy}/${r.name}`,
    policy,
    name: r.name,
    protocol: r.match?.protocol,
    matches: compileMatch(r.match),
    namespace,
    resource: { kind: r.resource.kind, name: r.resource.name },
    token: { source: r.token.source, name: r.token.name.toLowerCase() },
    missingToken: r.missingToken ?? 'Reject',
    failureMode: r.failureMode ?? 'Closed',
    source: r,
  }));
}
