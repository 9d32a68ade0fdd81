import { describe, expect, it } from 'vitest';
import { compileInjectionConfig, InjectionConfigError, type InjectionValues } from '../../src/injection/injection-config.ts';
import { parseQuantity } from '../../src/injection/quantity.ts';

const base: InjectionValues = { image: 'ghcr.io/sluice-dev/sluice-proxy:0.1.0', operatorAddress: 'sluice-discovery.sluice-system.svc:15010' };

describe('parseQuantity', () => {
  it.each([
    ['100m', 0.1], ['0.5', 0.5], ['2', 2], ['.5', 0.5], ['128Mi', 128 * 2 ** 20], ['1Gi', 2 ** 30], ['1G', 1e9], ['1k', 1000],
  ])('%s = %d', (text, value) => expect(parseQuantity(text)).toBeCloseTo(value));

  it.each(['', ' 1', '1 ', '+1', '-1', '1e3', '1E3', '1mi', '1Mb', 'Mi', '1..2', '1/2', '1\n', '0x10', '１'])('refuses %j', (text) => {
    expect(parseQuantity(text)).toBeUndefined();
  });
});

describe('compileInjectionConfig', () => {
  it('gives a CPU limit only where required: "1" by default, "" turns it off, a bad quantity stops the start', () => {
    expect(compileInjectionConfig(base).cpuLimitWhenRequired).toBe('1');
    expect(compileInjectionConfig({ ...base, cpuLimitWhenRequired: '500m' }).cpuLimitWhenRequired).toBe('500m');
    expect(compileInjectionConfig({ ...base, cpuLimitWhenRequired: '' }).cpuLimitWhenRequired).toBeUndefined();
    expect(() => compileInjectionConfig({ ...base, cpuLimitWhenRequired: 'lots' })).toThrow(/cpuLimitWhenRequired: "lots" is not a Kubernetes quantity/);
  });

  it('fills defaults and freezes', () => {
    const c = compileInjectionConfig(base);
    expect(c).toMatchObject({
      imagePullPolicy: 'IfNotPresent', tokenAudience: 'sluice.dev/discovery', tokenExpirationSeconds: 3600, logLevel: 'info',
      resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } }, lockNodes: [],
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('accepts every Redis topology', () => {
    for (const url of ['redis://r:6379', 'rediss://r:6379', 'redis+cluster://a:6379,b:6379', 'rediss+cluster://a:6379', 'redis+sentinel://s1:26379,s2:26379/mymaster', 'rediss+sentinel://s1/mymaster?db=2']) {
      expect(compileInjectionConfig({ ...base, redis: { url } }).redisUrl).toBe(url);
    }
  });

  it.each<[string, Partial<InjectionValues>, RegExp]>([
    ['image with a space', { image: 'evil image' }, /image/],
    ['image with a newline', { image: 'a:1\nb' }, /image/],
    ['operator without port', { operatorAddress: 'sluice-discovery' }, /operatorAddress/],
    ['bad pull policy', { imagePullPolicy: 'Sometimes' }, /imagePullPolicy/],
    ['bad resource', { resources: { requests: { cpu: 'lots' } } }, /resources.requests.cpu/],
    ['redis password in the URL', { redis: { url: 'redis://:hunter2@redis:6379' } }, /password/],
    ['redis not a URL', { redis: { url: 'redis:6379' } }, /redis.url/],
    ['a cluster URL with a password', { redis: { url: 'rediss+cluster://u:hunter2@a:6379,b:6379' } }, /urlSecret/],
    ['a sentinel URL with the sentinels\u2019 password', { redis: { url: 'redis+sentinel://s1,s2/m?sentinelPassword=x' } }, /urlSecret/],
    ['a sentinel password Secret for a cluster URL', { redis: { url: 'redis+cluster://a:6379', sentinelPasswordSecret: { name: 'sentinel-auth', key: 'password' } } }, /sentinelPasswordSecret/],
    ['a sentinel URL without its master name', { redis: { url: 'redis+sentinel://s1:26379,s2:26379' } }, /redis.url: .*master name/],
    ['lock node with a comma', { lockNodes: ['redis://a,redis://b'] }, /lock node/],
    ['lock node password in the URL', { lockNodes: ['redis://:hunter2@lock-0:6379'] }, /lockNodesSecret/],
    ['lock nodes both listed and from a Secret', { lockNodes: ['redis://lock-0:6379'], lockNodesSecret: { name: 'locks', key: 'nodes' } }, /not both/],
    ['lock nodes Secret without a valid name', { lockNodesSecret: { name: 'Not_A_Name', key: 'nodes' } }, /lockNodesSecret/],
    ['token expiring too soon', { tokenExpirationSeconds: 60 }, /tokenExpirationSeconds/],
    ['bad log level', { logLevel: 'loud' }, /logLevel/],
  ])('refuses %s', (_name, patch, message) => {
    let err: unknown;
    try {
      compileInjectionConfig({ ...base, ...patch });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InjectionConfigError);
    expect((err as InjectionConfigError).code).toBe('SLUICE_ERR_INJECTION_CONFIG');
    expect((err as Error).message).toMatch(message);
  });
});
