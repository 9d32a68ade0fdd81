import { describe, expect, it } from 'vitest';
import { readCallHead, relayedHeaders, upstreamRequestHeaders } from '../../src/grpc/grpc-request.ts';

const ok = { ':method': 'POST', ':path': '/pkg.Svc/Do', 'content-type': 'application/grpc' };

describe('readCallHead', () => {
  it('accepts a gRPC call and reads its method and deadline', () => {
    expect(readCallHead(ok)).toEqual({ grpcMethod: 'pkg.Svc/Do', path: '/pkg.Svc/Do', timeoutMs: undefined });
    expect(readCallHead({ ...ok, 'grpc-timeout': '2S' })).toMatchObject({ timeoutMs: 2_000 });
    for (const ct of ['application/grpc+proto', 'application/grpc+json', 'application/grpc; charset=utf-8', 'Application/GRPC']) {
      expect(readCallHead({ ...ok, 'content-type': ct })).toMatchObject({ grpcMethod: 'pkg.Svc/Do' });
    }
  });

  it.each([
    [{ 'content-type': 'application/json' }, 'SLUICE_ERR_GRPC_CONTENT_TYPE'],
    [{ 'content-type': 'application/grpcx' }, 'SLUICE_ERR_GRPC_CONTENT_TYPE'],
    [{ 'content-type': undefined }, 'SLUICE_ERR_GRPC_CONTENT_TYPE'],
    [{ ':method': 'GET' }, 'SLUICE_ERR_GRPC_METHOD'],
    [{ ':path': '/' }, 'SLUICE_ERR_GRPC_PATH'],
    [{ ':path': '/pkg.Svc' }, 'SLUICE_ERR_GRPC_PATH'],
    [{ ':path': '/pkg.Svc/Do/extra' }, 'SLUICE_ERR_GRPC_PATH'],
    [{ ':path': '//Do' }, 'SLUICE_ERR_GRPC_PATH'],
    [{ 'grpc-timeout': '1.5S' }, 'SLUICE_ERR_GRPC_TIMEOUT_HEADER'],
  ])('refuses %j with %s', (override, error) => {
    expect(readCallHead({ ...ok, ...override })).toEqual({ error });
  });
});

describe('header relaying', () => {
  it('forwards metadata, rebuilds pseudo-headers and replaces grpc-timeout', () => {
    const out = upstreamRequestHeaders(
      // set-cookie is the header node:http2 keeps as an array; metadata can repeat too
      { ...ok, ':authority': 'users:80', ':scheme': 'http', 'grpc-timeout': '5S', 'x-user': 'ada', 'x-bin': 'AAE=', te: 'trailers', 'set-cookie': ['a=1', 'b=2'] },
      '/pkg.Svc/Do',
      '4999000u',
    );
    expect(out).toEqual({
      ':method': 'POST', ':scheme': 'http', ':path': '/pkg.Svc/Do', ':authority': 'users:80',
      'content-type': 'application/grpc', 'x-user': 'ada', 'x-bin': 'AAE=', te: 'trailers', 'set-cookie': ['a=1', 'b=2'], 'grpc-timeout': '4999000u',
    });
    expect(upstreamRequestHeaders({ ...ok, 'grpc-timeout': '5S' }, '/pkg.Svc/Do', undefined)).not.toHaveProperty('grpc-timeout');
  });

  it('relays response headers and trailers without pseudo-headers', () => {
    expect(relayedHeaders({ ':status': '200', 'content-type': 'application/grpc', 'x-a': '1' }, 200)).toEqual({ ':status': 200, 'content-type': 'application/grpc', 'x-a': '1' });
    expect(relayedHeaders({ 'grpc-status': '0', 'grpc-message': '' })).toEqual({ 'grpc-status': '0', 'grpc-message': '' });
  });
});
