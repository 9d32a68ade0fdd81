import { deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoServiceDefinition, type Msg } from './echo-app.ts';
import { grpc, startProxy, STATUS, type ProxyUnderTest } from './harness.ts';
import { GRPC_HEADERS, grpcFrame, grpcMessageOf, grpcStatusOf, rawCall } from './raw-h2.ts';

const LIMIT = 64 * 1024;

/** Msg{payload: n zero bytes} in protobuf: field 1 (bytes), varint length, the bytes. */
function msgOf(n: number): Buffer {
  const len: number[] = [];
  for (let v = n; ; v >>>= 7) {
    if (v < 0x80) {
      len.push(v);
      break;
    }
    len.push((v & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.from([0x0a, ...len]), Buffer.alloc(n)]);
}

/**
 * --grpc-max-message counts what the app will receive: a compressed message is inflated (bounded
 * by the limit) as it passes, and one that inflates past the limit never reaches the app.
 */
describe('gRPC message size limits and compression', () => {
  let server: grpc.Server;
  let proxy: ProxyUnderTest;
  const received: number[] = [];

  beforeAll(async () => {
    server = new grpc.Server({ 'grpc.max_receive_message_length': -1 });
    server.addService(echoServiceDefinition(), {
      Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        received.push(call.request.payload.length);
        cb(null, { text: 'ok' } as Msg);
      },
    });
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    proxy = await startProxy(`127.0.0.1:${port}`, '', { maxMessageBytes: LIMIT });
  });
  afterAll(async () => {
    await proxy.close();
    server.forceShutdown();
  });

  const call = (encoding: string, body: Buffer) =>
    rawCall(proxy.address, { ...GRPC_HEADERS, ':path': '/test.echo.Echo/Unary', 'grpc-encoding': encoding }, [grpcFrame(body, { flag: 1 })]);

  it('a gzip message of 8 MiB that compresses to a few KiB is refused with RESOURCE_EXHAUSTED', async () => {
    const compressed = gzipSync(msgOf(8 * 1024 * 1024));
    expect(compressed.length).toBeLessThan(LIMIT);
    const r = await call('gzip', compressed);
    expect(grpcStatusOf(r)).toBe(STATUS.RESOURCE_EXHAUSTED);
    expect(grpcMessageOf(r)).toMatch(/SLUICE_ERR_GRPC_MESSAGE_TOO_LARGE/);
    expect(received).toEqual([]);
  });

  it('deflate is counted the same way', async () => {
    const r = await call('deflate', deflateSync(msgOf(1024 * 1024)));
    expect(grpcStatusOf(r)).toBe(STATUS.RESOURCE_EXHAUSTED);
    expect(received).toEqual([]);
  });

  it('a compressed message that inflates within the limit reaches the app', async () => {
    const r = await call('gzip', gzipSync(msgOf(LIMIT - 16)));
    expect(grpcStatusOf(r)).toBe(STATUS.OK);
    expect(received).toEqual([LIMIT - 16]);
  });

  it('a compressed message the sidecar cannot count (unknown or no encoding) is refused', async () => {
    received.length = 0;
    const unknown = await call('snappy', Buffer.from('whatever'));
    expect(grpcStatusOf(unknown)).toBe(STATUS.UNIMPLEMENTED);
    const none = await rawCall(proxy.address, { ...GRPC_HEADERS, ':path': '/test.echo.Echo/Unary' }, [grpcFrame(gzipSync(msgOf(10)), { flag: 1 })]);
    expect(grpcStatusOf(none)).toBe(STATUS.INTERNAL);
    expect(received).toEqual([]);
  });
});
