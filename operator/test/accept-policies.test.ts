import { describe, expect, it } from 'vitest';
import { acceptPolicies, canonicalMatch } from '../src/accept-policies.ts';
import { POLICY_KINDS } from '../src/kinds.ts';
import type { KubeObject } from '../src/kube-client.ts';

const RLP = POLICY_KINDS.find((k) => k.kind === 'RateLimitPolicy')!;
const TQ = POLICY_KINDS.find((k) => k.kind === 'TaskQueue')!;

function rlp(name: string, created: string, rules: unknown[], selector: unknown = { matchLabels: { app: 'web' } }): KubeObject {
  return {
    apiVersion: 'sluice.dev/v1alpha1', kind: 'RateLimitPolicy',
    metadata: { name, namespace: 'shop', uid: `uid-${name}`, generation: 1, creationTimestamp: created },
    spec: { selector, rules },
  };
}
const rule = (name: string, path = '/api/', requests = 10) => ({ name, match: { protocol: 'http', paths: [{ type: 'Prefix', value: path }] }, limit: { requests, per: '1s' } });
const pod = (name: string, labels: Record<string, string>): KubeObject => ({ metadata: { name, namespace: 'shop', labels } });

describe('acceptPolicies', () => {
  const pods = [pod('web-1', { app: 'web' }), pod('api-1', { app: 'api' })];

  it('accepts valid policies and reports invalid ones with the field path', () => {
    const v = acceptPolicies(RLP, [
      rlp('good', '2026-01-01T00:00:00Z', [rule('a')]),
      rlp('bad', '2026-01-01T00:00:01Z', [{ name: 'r', match: { protocol: 'http', paths: [{ type: 'RegularExpression', value: '^/a(' }] }, limit: { requests: 1, per: '1s' } }]),
    ], pods);
    expect(v.get('good')).toEqual({ accepted: true });
    expect(v.get('bad')).toMatchObject({ accepted: false, reason: 'Invalid' });
    expect((v.get('bad') as { message: string }).message).toContain('spec.rules[0].match.paths[0].value');
  });

  it.each([
    ['same match, overlapping pods → the newer one is Conflicted', [rule('a')], [rule('b')], { matchLabels: { app: 'web' } }, 'Conflicted'],
    ['same match, disjoint pods → both accepted', [rule('a')], [rule('b')], { matchLabels: { app: 'api' } }, true],
    ['different match, same pods → both accepted', [rule('a')], [rule('b', '/other/')], { matchLabels: { app: 'web' } }, true],
    ['same match written differently (method order) → Conflicted',
      [{ name: 'a', match: { protocol: 'http', methods: ['GET', 'POST'] }, limit: { requests: 1, per: '1s' } }],
      [{ name: 'b', match: { protocol: 'http', methods: ['POST', 'GET'] }, limit: { requests: 1, per: '1s' } }],
      { matchLabels: { app: 'web' } }, 'Conflicted'],
  ] as const)('%s', (_title, olderRules, newerRules, newerSelector, expected) => {
    const v = acceptPolicies(RLP, [
      rlp('newer', '2026-01-02T00:00:00Z', [...newerRules], newerSelector),
      rlp('older', '2026-01-01T00:00:00Z', [...olderRules]),
    ], pods);
    expect(v.get('older')).toEqual({ accepted: true });
    if (expected === true) expect(v.get('newer')).toEqual({ accepted: true });
    else {
      expect(v.get('newer')).toMatchObject({ accepted: false, reason: expected });
      expect((v.get('newer') as { message: string }).message).toContain('RateLimitPolicy shop/older');
      expect((v.get('newer') as { message: string }).message).toContain('pod shop/web-1');
    }
  });

  it('only accepted policies can displace later ones (A–B–C chain)', () => {
    const v = acceptPolicies(RLP, [
      rlp('a', '2026-01-01T00:00:00Z', [rule('x', '/a/')]),
      rlp('b', '2026-01-02T00:00:00Z', [rule('x', '/a/'), rule('y', '/c/')]),
      rlp('c', '2026-01-03T00:00:00Z', [rule('y', '/c/')]),
    ], pods);
    expect(v.get('a')).toEqual({ accepted: true });
    expect(v.get('b')).toMatchObject({ reason: 'Conflicted' });
    expect(v.get('c')).toEqual({ accepted: true });
  });

  it('does not look for rule conflicts in kinds without rules', () => {
    const tq = (name: string): KubeObject => ({
      apiVersion: 'sluice.dev/v1alpha1', kind: 'TaskQueue', metadata: { name, namespace: 'shop', creationTimestamp: '2026-01-01T00:00:00Z' },
      spec: { selector: { matchLabels: { app: 'web' } }, stream: 's', consumerGroup: 'g', delivery: { protocol: 'http', path: '/t' } },
    });
    const v = acceptPolicies(TQ, [tq('q1'), tq('q2')], pods);
    expect([...v.values()]).toEqual([{ accepted: true }, { accepted: true }]);
  });

  it('canonicalMatch ignores list order and absent-vs-empty', () => {
    expect(canonicalMatch(undefined)).toBe(canonicalMatch({}));
    expect(canonicalMatch({ methods: ['get', 'POST'] })).toBe(canonicalMatch({ methods: ['POST', 'GET'] }));
    expect(canonicalMatch({ protocol: 'http' })).not.toBe(canonicalMatch({ protocol: 'grpc' }));
  });
});

describe('Upstreams of one pod on one listen address', () => {
  const UPS = POLICY_KINDS.find((k) => k.kind === 'Upstream')!;
  const ups = (name: string, created: string, listen: string, app = 'web'): KubeObject => ({
    apiVersion: 'sluice.dev/v1alpha1', kind: 'Upstream',
    metadata: { name, namespace: 'shop', uid: `uid-${name}`, generation: 1, creationTimestamp: created },
    spec: { selector: { matchLabels: { app } }, service: { name: 'users', port: 80 }, protocol: 'http', listen },
  });
  const pods = [pod('web-1', { app: 'web' }), pod('api-1', { app: 'api' })];

  it('the newer one is Conflicted, naming the older; other pods or ports are fine', () => {
    const v = acceptPolicies(UPS, [ups('b', '2026-01-02T00:00:00Z', 'localhost:16001'), ups('a', '2026-01-01T00:00:00Z', '127.0.0.1:16001'), ups('c', '2026-01-03T00:00:00Z', '127.0.0.1:16001', 'api'), ups('d', '2026-01-04T00:00:00Z', '127.0.0.1:16002')], pods);
    expect(v.get('a')).toEqual({ accepted: true });
    expect(v.get('b')).toMatchObject({ accepted: false, reason: 'Conflicted' });
    expect((v.get('b') as { message: string }).message).toMatch(/Upstream shop\/a.*web-1/);
    expect(v.get('c')).toEqual({ accepted: true });
    expect(v.get('d')).toEqual({ accepted: true });
  });
});
