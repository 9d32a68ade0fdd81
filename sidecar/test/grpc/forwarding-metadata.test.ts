import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrustedProxies } from '../../src/http/client-address.ts';
import { echoServiceDefinition, type Msg } from './echo-app.ts';
import { grpc, startProxy, STATUS, type ProxyUnderTest } from './harness.ts';
import { GRPC_HEADERS, grpcFrame, grpcStatusOf, rawCall } from './raw-h2.ts';

/** Forwarding metadata reaches the app only from a trusted proxy, as on HTTP. */
describe('gRPC forwarding metadata', () => {
  let server: grpc.Server;
  let appAddress: string;
  const seen: (string | undefined)[] = [];

  beforeAll(async () => {
    server = new grpc.Server();
    server.addService(echoServiceDefinition(), {
      Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        seen.push(call.metadata.get('x-forwarded-for')[0] as string | undefined);
        cb(null, { text: 'ok' } as Msg);
      },
    });
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    appAddress = `127.0.0.1:${port}`;
  });
  afterAll(() => server.forceShutdown());

  const call = (proxy: ProxyUnderTest) =>
    rawCall(proxy.address, { ...GRPC_HEADERS, ':path': '/test.echo.Echo/Unary', 'x-forwarded-for': '6.6.6.6' }, [grpcFrame(Buffer.alloc(0))]);

  it('an untrusted client’s x-forwarded-for is dropped; a trusted proxy’s passes', async () => {
    const untrusted = await startProxy(appAddress, '');
    expect(grpcStatusOf(await call(untrusted))).toBe(STATUS.OK);
    await untrusted.close();
    const trusted = await startProxy(appAddress, '', { trustedProxies: new TrustedProxies(['127.0.0.0/8']) });
    expect(grpcStatusOf(await call(trusted))).toBe(STATUS.OK);
    await trusted.close();
    expect(seen).toEqual([undefined, '6.6.6.6']);
  });
});
