import http2, { type Http2Server, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoClient, type EchoClient, type Msg } from './echo-app.ts';
import { grpc, startProxy, STATUS, unaryResult, type ProxyUnderTest } from './harness.ts';

/**
 * An "app" on raw node:http2 that breaks the gRPC protocol in the ways a real backend (or a
 * misconfigured one: an HTTP server on the gRPC port) can. The proxy must turn each into the
 * status a gRPC client would derive, and the breaker must see it as a failure.
 */
const BEHAVIOURS: Record<string, (s: ServerHttp2Stream) => void> = {
  '/test.echo.Echo/Unary': (s) => s.respond({ ':status': 503, 'content-type': 'text/plain' }, { endStream: true }),
  '/test.echo.Echo/ServerStream': (s) => {
    // Headers and a message, then the end of the stream without any trailers (no grpc-status).
    s.respond({ ':status': 200, 'content-type': 'application/grpc' });
    s.end(Buffer.from([0, 0, 0, 0, 0]));
  },
  '/test.echo.Echo/ClientStream': (s) => s.close(http2.constants.NGHTTP2_REFUSED_STREAM),
};

describe('an app that breaks the gRPC protocol', () => {
  let app: Http2Server;
  let proxy: ProxyUnderTest;
  let client: EchoClient;

  beforeAll(async () => {
    app = http2.createServer();
    app.on('stream', (s, h) => {
      s.on('error', () => {});
      BEHAVIOURS[h[':path'] as string]?.(s);
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    proxy = await startProxy(`127.0.0.1:${(app.address() as AddressInfo).port}`, `
apiVersion: sluice.dev/v1alpha1
kind: CircuitBreakerPolicy
metadata: {name: b, namespace: t}
spec:
  selector: {}
  rules:
    - name: all
      failureConditions: {grpcCodes: [UNAVAILABLE, INTERNAL]}
      trip: {consecutiveFailures: 3}
`);
    client = echoClient(proxy.address);
  });
  afterAll(async () => {
    client.close();
    await proxy.close();
    await new Promise((r) => app.close(r));
  });

  it('HTTP 503 instead of a gRPC answer becomes UNAVAILABLE (the gRPC spec mapping)', async () => {
    const r = await unaryResult<Msg>((cb) => client.Unary({}, new grpc.Metadata(), {}, cb));
    expect(r.code).toBe(STATUS.UNAVAILABLE);
    expect(r.details).toContain('HTTP 503');
  });

  it('a response without trailers becomes INTERNAL after the messages already relayed', async () => {
    const stream = client.ServerStream({ count: 1 });
    let messages = 0;
    stream.on('data', () => messages++);
    const status = await new Promise<grpc.StatusObject>((resolve) => {
      stream.on('error', () => {});
      stream.on('status', resolve);
    });
    expect(messages).toBe(1);
    expect(status.code).toBe(STATUS.INTERNAL);
    expect(status.details).toContain('SLUICE_ERR_GRPC_UPSTREAM_PROTOCOL');
  });

  it('REFUSED_STREAM from the app becomes UNAVAILABLE', async () => {
    const r = await unaryResult<Msg>((cb) => {
      const call = client.ClientStream(new grpc.Metadata(), {}, cb);
      call.end();
      return call;
    });
    expect(r.code).toBe(STATUS.UNAVAILABLE);
    expect(r.details).toContain('SLUICE_ERR_GRPC_UPSTREAM_RESET');
  });

  it('the breaker counted every one of them as a failure: three in a row opened the circuit', async () => {
    expect(await proxy.metric('sluice_grpc_proxy_errors_total', {})).toBe(3);
    const r = await unaryResult<Msg>((cb) => client.Unary({}, new grpc.Metadata(), {}, cb));
    expect(r.code).toBe(STATUS.UNAVAILABLE);
    expect(r.details).toContain('SLUICE_ERR_CIRCUIT_OPEN');
  });
});
