import { describe, expect, it } from 'vitest';
import { parseCliOptions, UsageError } from '../../src/cli-options.ts';
import { splitHostPort } from '../../src/websocket/websocket-proxy.ts';

describe('command line', () => {
  it('has the documented defaults and reads SLUICE_* env vars, flags winning', () => {
    const o = parseCliOptions(['--config', 'a.yaml', '--app-http', '127.0.0.1:1'], { SLUICE_APP_HTTP: '127.0.0.1:2', SLUICE_REDIS: 'redis://r:6379', SLUICE_LABELS: 'app=x,tier=y' });
    expect(o).not.toBe('help');
    if (o === 'help') return;
    expect([o.listenHttp, o.listenGrpc, o.admin, o.localApi]).toEqual([':15080', ':15081', ':15000', '127.0.0.1:15020']);
    expect(o.appHttp).toBe('127.0.0.1:1');
    expect(o.redis).toBe('redis://r:6379');
    expect(o.labels).toEqual({ app: 'x', tier: 'y' });
    expect(o.grpcMaxConcurrentStreams).toBe(1000);
    expect(o.grpcInitialWindowSize).toBe(65535);
    expect(o.redisTimeoutMs).toBe(100);
    const slow = parseCliOptions(['--config', 'a.yaml', '--redis-timeout', '250ms']);
    expect(slow !== 'help' && slow.redisTimeoutMs).toBe(250);
  });

  it('refuses bad values with a UsageError naming the flag', () => {
    expect(() => parseCliOptions(['--config', 'a', '--headers-timeout', 'soon'])).toThrow(/--headers-timeout/);
    expect(() => parseCliOptions(['--config', 'a', '--redis-timeout', 'fast'])).toThrow(/--redis-timeout/);
    expect(() => parseCliOptions(['--config', 'a', '--grpc-initial-window', '0'])).toThrow(UsageError);
    expect(() => parseCliOptions(['--config', 'a', '--labels', 'oops'])).toThrow(/--labels/);
    expect(() => parseCliOptions(['--config', 'a', '--operator', 'op:1'])).toThrow(/exclusive/);
  });

  it('--path-escaped-slashes defaults to reject; --trusted-proxies to nobody; both refuse bad values', () => {
    const d = parseCliOptions(['--config', 'a.yaml']);
    if (d === 'help') throw new Error('unexpected help');
    expect(d.pathEscapedSlashes).toBe('reject');
    expect(d.trustedProxies).toEqual([]);
    const o = parseCliOptions(['--config', 'a.yaml', '--path-escaped-slashes', 'keep'], { SLUICE_TRUSTED_PROXIES: '10.0.0.0/8, fd00::/8,192.0.2.1' });
    if (o === 'help') throw new Error('unexpected help');
    expect(o.pathEscapedSlashes).toBe('keep');
    expect(o.trustedProxies).toEqual(['10.0.0.0/8', 'fd00::/8', '192.0.2.1']);
    expect(() => parseCliOptions(['--config', 'a', '--path-escaped-slashes', 'decode'])).toThrow(/--path-escaped-slashes/);
    expect(() => parseCliOptions(['--config', 'a', '--trusted-proxies', '10.0.0.0/33'])).toThrow(/--trusted-proxies: "10.0.0.0\/33"/);
    expect(() => parseCliOptions(['--config', 'a', '--trusted-proxies', 'ingress.local'])).toThrow(UsageError);
  });

  it('splits host:port, with ":port" meaning every interface', () => {
    expect(splitHostPort(':15080')).toEqual(['0.0.0.0', 15080]);
    expect(splitHostPort('127.0.0.1:80')).toEqual(['127.0.0.1', 80]);
    expect(splitHostPort('[::1]:80')).toEqual(['::1', 80]);
    expect(() => splitHostPort('localhost')).toThrow(RangeError);
    expect(() => splitHostPort('h:99999')).toThrow(RangeError);
  });
});
