import { describe, expect, it } from 'vitest';
import { compilePlan } from '../../lib/policy/compile.ts';
import type { KubeObject } from '../src/kube-client.ts';
import { buildSnapshot } from '../src/snapshot.ts';

const policy = (name: string, generation: number, uid = `uid-${name}`): KubeObject => ({
  apiVersion: 'sluice.dev/v1alpha1', kind: 'RateLimitPolicy',
  metadata: { name, namespace: 'shop', uid, generation, resourceVersion: '42', managedFields: [{}] },
  spec: { selector: { matchLabels: { app: 'web' } }, rules: [{ name: 'r', limit: { requests: 1, per: '1s' } }] },
  status: { observedGeneration: generation },
});

describe('buildSnapshot', () => {
  it('gives the same content the same version, whatever the order', () => {
    const a = buildSnapshot([policy('a', 1), policy('b', 2)]);
    const b = buildSnapshot([policy('b', 2), policy('a', 1)]);
    expect(a.snapshot.version).toBe(b.snapshot.version);
    expect(a.snapshot.resources.map((r) => r.name)).toEqual(['a', 'b']);
  });

  it('changes the version with a generation or a re-created object (new uid)', () => {
    const v = buildSnapshot([policy('a', 1)]).snapshot.version;
    expect(buildSnapshot([policy('a', 2)]).snapshot.version).not.toBe(v);
    expect(buildSnapshot([policy('a', 1, 'uid-new')]).snapshot.version).not.toBe(v);
  });

  it('carries only what a sidecar needs, and compiles with lib/policy', () => {
    const { snapshot, contents } = buildSnapshot([policy('a', 3)]);
    const doc = JSON.parse(snapshot.resources[0]!.json);
    expect(doc.status).toBeUndefined();
    expect(doc.metadata.managedFields).toBeUndefined();
    expect(contents.get('RateLimitPolicy/shop/a')).toEqual({ uid: 'uid-a', generation: 3 });
    const plan = compilePlan(snapshot.resources.map((r) => JSON.parse(r.json)), { version: snapshot.version });
    expect(plan.rateLimits.map((r) => r.id)).toEqual(['shop/a/r']);
  });
});
