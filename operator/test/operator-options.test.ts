/** The operator's discovery transport flags. */
import { describe, expect, it } from 'vitest';
import { parseOperatorOptions } from '../src/operator-options.ts';

describe('--discovery-insecure / --discovery-service', () => {
  const cases: { name: string; argv: string[]; env?: Record<string, string>; insecure: boolean; service: string }[] = [
    { name: 'defaults: TLS when certificates exist; service sluice-discovery', argv: [], insecure: false, service: 'sluice-discovery' },
    { name: 'the flag', argv: ['--discovery-insecure'], insecure: true, service: 'sluice-discovery' },
    { name: 'the env var', argv: [], env: { SLUICE_OPERATOR_DISCOVERY_INSECURE: 'true' }, insecure: true, service: 'sluice-discovery' },
    { name: 'env var false', argv: [], env: { SLUICE_OPERATOR_DISCOVERY_INSECURE: 'false' }, insecure: false, service: 'sluice-discovery' },
    { name: 'service from the chart', argv: [], env: { SLUICE_OPERATOR_DISCOVERY_SERVICE: 'rel-sluice-discovery' }, insecure: false, service: 'rel-sluice-discovery' },
  ];
  it.each(cases)('$name', ({ argv, env, insecure, service }) => {
    const o = parseOperatorOptions(['--id', 'x', '--lease-namespace', 'ns', ...argv], env ?? {});
    if (o === 'help') throw new Error('unreachable');
    expect(o.discoveryInsecure).toBe(insecure);
    expect(o.discoveryService).toBe(service);
  });
});

describe('--lock-nodes', () => {
  it('takes the lock nodes from the flag or SLUICE_OPERATOR_LOCK_NODES (the chart sets it, from a Secret or values)', () => {
    const fromEnv = parseOperatorOptions(['--id', 'x', '--lease-namespace', 'ns'], { SLUICE_OPERATOR_LOCK_NODES: 'redis://a:6379, redis://b:6379,redis://c:6379' });
    if (fromEnv === 'help') throw new Error('unreachable');
    expect(fromEnv.lockNodes).toEqual(['redis://a:6379', 'redis://b:6379', 'redis://c:6379']);
    const none = parseOperatorOptions(['--id', 'x', '--lease-namespace', 'ns'], {});
    if (none === 'help') throw new Error('unreachable');
    expect(none.lockNodes).toBeUndefined();
  });
});

describe('--redis', () => {
  it('takes any topology and refuses a bad URL at start, with the reason and without the password', () => {
    const o = parseOperatorOptions(['--id', 'x', '--lease-namespace', 'ns', '--redis', 'redis+sentinel://s1:26379,s2:26379/mymaster'], {});
    if (o === 'help') throw new Error('unreachable');
    expect(o.redis).toBe('redis+sentinel://s1:26379,s2:26379/mymaster');
    expect(() => parseOperatorOptions(['--id', 'x', '--lease-namespace', 'ns'], { SLUICE_OPERATOR_REDIS: 'redis+sentinel://u:hunter2@s1:26379' }))
      .toThrow(/^--redis: a sentinel URL ends with the master name(?!.*hunter2)/);
    // The sentinels' password apart from the URL (its own Secret) joins the URL, encoded.
    const sep = parseOperatorOptions(['--id', 'x', '--lease-namespace', 'ns', '--redis', 'redis+sentinel://s1/m'], { SLUICE_OPERATOR_REDIS_SENTINEL_PASSWORD: 'p&w' });
    if (sep === 'help') throw new Error('unreachable');
    expect(sep.redis).toBe('redis+sentinel://s1/m?sentinelPassword=p%26w');
    expect(() => parseOperatorOptions(['--id', 'x', '--lease-namespace', 'ns', '--redis', 'redis://r:6379', '--redis-sentinel-password', 'x'], {}))
      .toThrow(/only for a redis\+sentinel/);
    expect(() => parseOperatorOptions(['--id', 'x', '--lease-namespace', 'ns', '--lock-nodes', 'redis://a:6379,redis+cluster://b:6379'], {}))
      .toThrow(/--lock-nodes: .*independent server/);
  });
});
