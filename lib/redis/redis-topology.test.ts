import { describe, expect, it } from 'vitest';
import { redactUrl } from './redis-health.ts';
import { parseRedisTopology, redisUrlHasPassword, RedisUrlError } from './redis-topology.ts';

describe('parseRedisTopology', () => {
  it('one server keeps its URL for ioredis', () => {
    expect(parseRedisTopology('redis://127.0.0.1:6379')).toEqual({ kind: 'single', url: 'redis://127.0.0.1:6379', tls: false });
    expect(parseRedisTopology('rediss://u:p%40ss@redis.svc:6380/2')).toMatchObject({ kind: 'single', tls: true, username: 'u', password: 'p@ss' });
  });

  it('a cluster URL lists seed nodes, with the default port and IPv6', () => {
    expect(parseRedisTopology('redis+cluster://a:7000,b,[::1]:7002')).toEqual({
      kind: 'cluster', tls: false, nodes: [{ host: 'a', port: 7000 }, { host: 'b', port: 6379 }, { host: '::1', port: 7002 }],
    });
    expect(parseRedisTopology('rediss+cluster://:secret@a:7000/')).toMatchObject({ kind: 'cluster', tls: true, password: 'secret', username: undefined });
  });

  it('a sentinel URL names the sentinels, the master, the db and the sentinels’ own credentials', () => {
    expect(parseRedisTopology('redis+sentinel://app:pw@s1:26379,s2/mymaster?db=3&sentinelUsername=sen&sentinelPassword=s%26p')).toEqual({
      kind: 'sentinel', tls: false, username: 'app', password: 'pw', masterName: 'mymaster', db: 3,
      sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }], sentinelUsername: 'sen', sentinelPassword: 's&p',
    });
    expect(parseRedisTopology('rediss+sentinel://s1/m')).toMatchObject({ kind: 'sentinel', tls: true, masterName: 'm', db: 0 });
  });

  it.each([
    ['http://a:1', /not a Redis URL/],
    ['redis+cluster://', /no seed node/],
    ['redis://a:1,b:2', /one server/],
    ['redis+sentinel://s1:26379', /master name/],
    ['redis+sentinel://s1/a/b', /master name/],
    ['redis+sentinel://s1/m?db=x', /database number/],
    ['redis+cluster://a:1/3', /no path/],
    ['redis+cluster://a:99999', /port out of range/],
    ['redis+cluster://a:1?sentinelPassword=x', /unknown parameter/],
    ['redis+sentinel://s1/m?pasword=x', /unknown parameter "pasword"/],
    ['redis+cluster://a b:1', /not host:port/],
  ])('refuses %s with a reason', (url, reason) => {
    let caught: unknown;
    try {
      parseRedisTopology(url);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(RedisUrlError);
    expect((caught as RedisUrlError).code).toBe('SLUICE_ERR_REDIS_URL');
    expect((caught as Error).message).toMatch(reason);
  });

  it('an error never repeats the password', () => {
    expect(() => parseRedisTopology('redis+sentinel://u:hunter2@s1/m?db=bad')).toThrow(/^(?!.*hunter2)/);
  });

  it('knows when a URL carries a password, data nodes’ or sentinels’', () => {
    expect(redisUrlHasPassword('redis+cluster://a:1')).toBe(false);
    expect(redisUrlHasPassword('redis+cluster://u:p@a:1')).toBe(true);
    expect(redisUrlHasPassword('redis+sentinel://s1/m?sentinelPassword=x')).toBe(true);
  });
});

describe('redactUrl', () => {
  it('hides passwords in every topology’s URL', () => {
    expect(redactUrl('redis://:pw@h:1')).toBe('redis://:***@h:1');
    expect(redactUrl('redis://h:1')).toBe('redis://h:1');
    expect(redactUrl('rediss+cluster://user:pw@a:1,b:2')).toBe('rediss+cluster://user:***@a:1,b:2');
    expect(redactUrl('redis+sentinel://u:pw@s1,s2/m?db=1&sentinelPassword=top')).toBe('redis+sentinel://u:***@s1,s2/m?db=1&sentinelPassword=***');
    expect(redactUrl('not a url')).toBe('<invalid url>');
  });
});
