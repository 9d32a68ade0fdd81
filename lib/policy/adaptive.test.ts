import { describe, expect, it } from 'vitest';
import { compilePlan } from './compile.ts';
import { PolicyValidationError } from './errors.ts';
import { validateResource } from './validate.ts';

const meta = { name: 'p', namespace: 'shop' };
const rlp = (rule: Record<string, unknown>) => ({ apiVersion: 'sluice.dev/v1alpha1', kind: 'RateLimitPolicy', metadata: meta, spec: { selector: {}, rules: [{ name: 'r', ...rule }] } });
const cbp = (rule: Record<string, unknown>) => ({ apiVersion: 'sluice.dev/v1alpha1', kind: 'CircuitBreakerPolicy', metadata: meta, spec: { selector: {}, rules: [{ name: 'r', ...rule }] } });
const tq = (spec: Record<string, unknown>) => ({
  apiVersion: 'sluice.dev/v1alpha1', kind: 'TaskQueue', metadata: meta,
  spec: { selector: {}, stream: 's', consumerGroup: 'g', delivery: { path: '/t' }, ...spec },
});
const priority = { key: { source: 'Header', name: 'X-Priority' }, levels: ['critical', 'default', 'sheddable'], default: 'default', reserved: 10 };

function issues(doc: unknown): { path: string; message: string }[] {
  try {
    validateResource(doc);
    return [];
  } catch (err) {
    if (!(err instanceof PolicyValidationError)) throw err;
    return [...err.issues];
  }
}

describe('warm-up, adaptive concurrency and priority: validation names the field', () => {
  const cases: [string, unknown, string, RegExp][] = [
    ['warmUp without a period', rlp({ limit: { requests: 10, per: '1s', warmUp: { coldFactor: 3 } } }), 'spec.rules[0].limit.warmUp.period', /required/],
    ['coldFactor of 1', rlp({ limit: { requests: 10, per: '1s', warmUp: { period: '1m', coldFactor: 1 } } }), 'spec.rules[0].limit.warmUp.coldFactor', /at least 1.1/],
    ['priority without a limit', rlp({ match: { protocol: 'websocket' }, websocket: { maxConnections: 5 }, priority }), 'spec.rules[0].priority', /needs a limit/],
    ['default not a level', rlp({ limit: { requests: 10, per: '1s' }, priority: { ...priority, default: 'normal' } }), 'spec.rules[0].priority.default', /one of the levels/],
    ['a level twice', rlp({ limit: { requests: 10, per: '1s' }, priority: { ...priority, levels: ['a', 'b', 'a'], default: 'a' } }), 'spec.rules[0].priority.levels[2]', /twice/],
    ['one level only', rlp({ limit: { requests: 10, per: '1s' }, priority: { ...priority, levels: ['a'], default: 'a' } }), 'spec.rules[0].priority.levels', /at least 2/],
    ['reserved leaving nothing', rlp({ limit: { requests: 10, per: '1s' }, priority: { ...priority, reserved: 50 } }), 'spec.rules[0].priority.reserved', /nothing for the lowest/],
    ['GrpcMetadata on http', rlp({ limit: { requests: 10, per: '1s' }, priority: { ...priority, key: { source: 'GrpcMetadata', name: 'x-p' } } }), 'spec.rules[0].priority.key.source', /protocol: grpc/],
    ['minLimit over maxLimit', cbp({ adaptiveConcurrency: { minLimit: 50, maxLimit: 10 } }), 'spec.rules[0].adaptiveConcurrency.minLimit', /maxLimit/],
    ['unknown algorithm', cbp({ adaptiveConcurrency: { algorithm: 'Vegas' } }), 'spec.rules[0].adaptiveConcurrency.algorithm', /Gradient, AIMD/],
    ['AIMD without a threshold', cbp({ adaptiveConcurrency: { algorithm: 'AIMD' } }), 'spec.rules[0].adaptiveConcurrency.latencyThreshold', /required for algorithm AIMD/],
    ['a Gradient field on AIMD', cbp({ adaptiveConcurrency: { algorithm: 'AIMD', latencyThreshold: '50ms', tolerancePercent: 10 } }), 'spec.rules[0].adaptiveConcurrency.tolerancePercent', /Gradient only/],
    ['initialLimit outside the bounds', cbp({ adaptiveConcurrency: { minLimit: 5, maxLimit: 10, initialLimit: 50 } }), 'spec.rules[0].adaptiveConcurrency.initialLimit', /between/],
    ['priority on a breaker without a limit', cbp({ trip: { consecutiveFailures: 3 }, priority }), 'spec.rules[0].priority', /adaptiveConcurrency or a bulkhead/],
    ['queue min over max', tq({ adaptiveConcurrency: { min: 32, max: 8 } }), 'spec.adaptiveConcurrency.min', /must not exceed max/],
    ['queue adaptive without max', tq({ adaptiveConcurrency: { min: 2 } }), 'spec.adaptiveConcurrency.max', /required/],
  ];
  for (const [title, doc, path, message] of cases) {
    it(title, () => {
      const found = issues(doc);
      expect(found.map((i) => i.path), JSON.stringify(found)).toContain(path);
      expect(found.find((i) => i.path === path)!.message).toMatch(message);
    });
  }
});

describe('compiled plans', () => {
  it('carry the defaults: coldFactor 3, Gradient 1..1000 from 20, the lowest level for unknown values without a default', () => {
    const plan = compilePlan([
      rlp({ limit: { requests: 10, per: '1s', warmUp: { period: '1m' } }, priority: { key: { source: 'Header', name: 'X-P' }, levels: ['hi', 'lo'] } }),
      cbp({ adaptiveConcurrency: {}, priority: { ...priority } }),
      tq({ adaptiveConcurrency: { max: 8 } }),
    ]);
    expect(plan.rateLimits[0]!.limit!.warmUp).toEqual({ periodMs: 60_000, coldFactor: 3 });
    expect(plan.rateLimits[0]!.priority).toMatchObject({ name: 'x-p', defaultLevel: 1, ceilings: [1, 1] });
    expect(plan.breakers[0]!.adaptiveConcurrency).toMatchObject({ algorithm: 'Gradient', minLimit: 1, maxLimit: 1000, initialLimit: 20, sampleWindowMs: 100, minRttIntervalMs: 30_000, tolerance: 0.5 });
    expect(plan.breakers[0]!.priority!.ceilings).toEqual([1, 0.9, 0.8]);
    // The CRD defaults concurrency to 10: beside adaptiveConcurrency it is clamped into [min, max].
    expect(plan.taskQueues[0]).toMatchObject({ concurrency: 8, adaptiveConcurrency: { min: 1, max: 8 } });
  });
});
