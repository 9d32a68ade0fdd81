import { describe, expect, it } from 'vitest';
import { compilePlan } from './compile.ts';
import { PolicyValidationError } from './errors.ts';
import { BASELINE_KINDS, isUnknownKind, negotiateKinds } from './skew.ts';

const rateLimit = (extraSpec: Record<string, unknown> = {}) => ({
  apiVersion: 'sluice.dev/v1alpha1', kind: 'RateLimitPolicy', metadata: { name: 'api', namespace: 'shop' },
  spec: { selector: { matchLabels: { app: 'api' } }, rules: [{ name: 'all', limit: { requests: 10, per: '1s' } }], ...extraSpec },
});
const future = { apiVersion: 'sluice.dev/v1alpha1', kind: 'FuturePolicy', metadata: { name: 'f', namespace: 'shop' }, spec: {} };

describe('skew-tolerant compile (snapshots from a newer operator)', () => {
  it('the policy above compiles as it is', () => {
    expect(compilePlan([rateLimit()]).rateLimits.map((r) => r.id)).toEqual(['shop/api/all']);
  });

  it('skips an unknown kind with a warning instead of refusing the set', () => {
    const plan = compilePlan([rateLimit(), future], { tolerateSkew: true });
    expect(plan.rateLimits.map((r) => r.id)).toEqual(['shop/api/all']);
    expect(plan.warnings).toEqual(['FuturePolicy shop/f: unknown kind, skipped (from a newer operator?)']);
  });

  it('ignores an unknown field with a warning naming its path', () => {
    const plan = compilePlan([rateLimit({ futureKnob: true })], { tolerateSkew: true });
    expect(plan.rateLimits).toHaveLength(1);
    expect(plan.warnings).toEqual(['RateLimitPolicy shop/api: spec.futureKnob: unknown field, ignored (from a newer operator?)']);
  });

  it('stays strict for a person\'s file: both are errors there', () => {
    expect(() => compilePlan([rateLimit({ futureKnob: true })])).toThrow(PolicyValidationError);
    expect(() => compilePlan([future])).toThrow(/kind/);
  });

  it('still refuses what is wrong in a known field', () => {
    expect(() => compilePlan([rateLimit({ mode: 'Sometimes' })], { tolerateSkew: true })).toThrow(/spec.mode/);
  });
});

describe('kind negotiation', () => {
  it('takes an older sidecar (no list) to know the first release\'s kinds', () => {
    expect([...negotiateKinds(undefined)]).toEqual([...BASELINE_KINDS]);
    expect([...negotiateKinds([])]).toEqual([...BASELINE_KINDS]);
    expect([...negotiateKinds(['RateLimitPolicy'])]).toEqual(['RateLimitPolicy']);
  });
  it('knows which kinds are unknown', () => {
    expect(isUnknownKind(future)).toBe(true);
    expect(isUnknownKind(rateLimit())).toBe(false);
    expect(isUnknownKind({})).toBe(false);
  });
});
