import { describe, expect, it } from 'vitest';
import { namespaceCpuRules, sidecarCpu } from '../../src/injection/namespace-cpu-rules.ts';

describe('namespaceCpuRules', () => {
  it('needs nothing without quotas or limit ranges on CPU', () => {
    expect(namespaceCpuRules([], [])).toEqual({ limitRequired: false });
    expect(namespaceCpuRules([{ spec: { hard: { 'requests.cpu': '4', pods: '10' } } }], [{ spec: { limits: [{ type: 'PersistentVolumeClaim', max: { storage: '1Gi' } }] } }]))
      .toEqual({ limitRequired: false });
  });
  it('requires a limit under a quota on limits.cpu', () => {
    expect(namespaceCpuRules([{ spec: { hard: { 'limits.cpu': '4' } } }], [])).toEqual({ limitRequired: true });
  });
  it('takes the tightest LimitRange bounds for containers and pods', () => {
    expect(namespaceCpuRules([], [
      { spec: { limits: [{ type: 'Container', max: { cpu: '2' }, min: { cpu: '10m' } }] } },
      { spec: { limits: [{ type: 'Pod', max: { cpu: '750m' } }, { type: 'Container', min: { cpu: '100m' }, maxLimitRequestRatio: { cpu: '4' } }] } },
    ])).toEqual({ limitRequired: true, maxCores: 0.75, minCores: 0.1, maxRatio: 4 });
  });
});

describe('sidecarCpu', () => {
  const none = { limitRequired: false };
  it('adds no limit where none is required', () => {
    expect(sidecarCpu({ request: '50m' }, none, '1')).toEqual({ request: '50m' });
  });
  it('adds the configured limit where one is required, lowered to the max', () => {
    expect(sidecarCpu({ request: '50m' }, { limitRequired: true }, '1')).toEqual({ request: '50m', limit: '1' });
    expect(sidecarCpu({ request: '50m' }, { limitRequired: true, maxCores: 0.5 }, '1')).toEqual({ request: '50m', limit: '500m' });
  });
  it('keeps a limit set explicitly, and adds none when the policy is off', () => {
    expect(sidecarCpu({ request: '50m', limit: '300m' }, { limitRequired: true, maxCores: 0.2 }, '1')).toEqual({ request: '50m', limit: '300m' });
    expect(sidecarCpu({ request: '50m' }, { limitRequired: true }, undefined)).toEqual({ request: '50m' });
  });
  it('raises the request to the min and to limit/ratio, never above the limit', () => {
    expect(sidecarCpu({ request: '50m' }, { limitRequired: true, minCores: 0.1 }, '1')).toEqual({ request: '100m', limit: '1' });
    expect(sidecarCpu({ request: '50m' }, { limitRequired: true, maxRatio: 4 }, '1')).toEqual({ request: '250m', limit: '1' });
    expect(sidecarCpu({ request: '50m' }, { limitRequired: true, maxCores: 0.05, minCores: 0.1 }, '1')).toEqual({ request: '50m', limit: '50m' });
  });
});
