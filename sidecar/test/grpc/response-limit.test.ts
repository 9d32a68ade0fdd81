import http2, { type Http2Server, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/eventually.ts';
import { echoClient, echoServiceDefinition, type EchoClient, type Msg } from './echo-app.ts';
import { grpc, startProxy, STATUS, unaryResult, type ProxyUnderTest } from './harness.ts';
import { GRPC_HEADERS, grpcFrame, grpcMessageOf, grpcStatusOf, rawCall } from './raw-h2.ts';

const LIMIT = 64 * 1024;

/** Serialized size of Msg{payload: n bytes}: tag, varint length, bytes. */
function msgSize(n: number): number {
  let varint = 1;
  for (let v = n; v >= 0x80; v >>>= 7) varint++;
  return 1 + varint + n;
}

/** Payload size whose Msg{payload} serializes to exactly `bytes`. */
function payloadFor(bytes: number): number {
  let n = bytes - 2;
  while (msgSize(n) > bytes) n--;
  expect(msgSize(n)).toBe(bytes);
  return n;
}

/**
 * Response messages are held to the same --grpc-max-message limit as requests, decided from the
 * length prefix as it streams past: the client gets RESOURCE_EXHAUSTED, the app RST_STREAM.
 */
describe('response messages over the limit', () => {
  let server: grpc.Server;
  let proxy: ProxyUnderTest;
  let client: EchoClient;
  const cancelled: string[] = [];

  beforeAll(async () => {
    // A real grpc-js app: Unary answers with a payload of `count` bytes (a small request asking
    // for a big answer); ServerStream sends `count` messages of `total` bytes each.
    server = new grpc.Server({ 'grpc.max_send_message_length': -1 });
    server.addService(echoServiceDefinition(), {
      Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        call.on('cancelled', () => cancelled.push(call.request.text));
        cb(null, { payload: Buffer.alloc(call.request.count, 7) } as Msg);
      },
      ServerStream: (call: grpc.ServerWritableStream<Msg, Msg>) => {
        call.on('cancelled', () => cancelled.push(call.request.text));
        for (let i = 0; i < call.request.count; i++) call.write({ payload: Buffer.alloc(call.request.total, i) } as Msg);
        call.end();
      },
    });
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    proxy = await startProxy(`127.0.0.1:${port}`, '', { maxMessageBytes: LIMIT });
    client = echoClient(proxy.address, { 'grpc.max_receive_message_length': -1 });
  });
  afterAll(async () => {
    client.close();
    await proxy.close();
    server.forceShutdown();
  });

  it('relays a response of exactly the limit and refuses one byte more with RESOURCE_EXHAUSTED', async () => {
    const n = payloadFor(LIMIT);
    const ok = await unaryResult<Msg>((cb) => client.Unary({ count: n, text: 'at' }, new grpc.Metadata(), {}, cb));
    expect(ok.code).toBe(STATUS.OK);
    expect(ok.response?.payload.length).toBe(n);

    const over = await unaryResult<Msg>((cb) => client.Unary({ count: n + 1, text: 'over' }, new grpc.Metadata(), {}, cb));
    expect(over.code).toBe(STATUS.RESOURCE_EXHAUSTED);
    expect(over.details).toContain('SLUICE_ERR_GRPC_MESSAGE_TOO_LARGE');
    expect(over.details).toContain(`response message of ${LIMIT + 1} bytes`);
    expect(over.response).toBeUndefined();
    expect(await proxy.metric('sluice_grpc_requests_total', { method: 'test.echo.Echo/Unary', code: 'RESOURCE_EXHAUSTED' })).toBe(1);
  });

  it('relays every message of a stream that fits, and ends one at its first message over the limit', async () => {
    const stream = client.ServerStream({ count: 3, total: payloadFor(LIMIT) - 1, text: 'stream-ok' });
    let got = 0;
    stream.on('data', () => got++);
    const status = await new Promise<grpc.StatusObject>((resolve) => {
      stream.on('error', () => {});
      stream.on('status', resolve);
    });
    expect(status.code).toBe(STATUS.OK);
    expect(got).toBe(3);

    // Messages one byte over: the first ends the call, and none reaches the client.
    const big = client.ServerStream({ count: 5, total: LIMIT, text: 'stream-over' });
    let bigGot = 0;
    big.on('data', () => bigGot++);
    const bigStatus = await new Promise<grpc.StatusObject>((resolve) => {
      big.on('error', () => {});
      big.on('status', resolve);
    });
    expect(bigStatus.code).toBe(STATUS.RESOURCE_EXHAUSTED);
    expect(bigGot).toBe(0);
  });
});

/**
 * The decision comes from the prefix alone: an app announcing a 1 GiB response and sending only
 * its first bytes is answered at once — no waiting for (or buffering of) the body — and its
 * stream is reset.
 */
describe('a response announced over the limit', () => {
  let app: Http2Server;
  let proxy: ProxyUnderTest;
  const resets: number[] = [];
  const sent = { messages: 0 };

  beforeAll(async () => {
    app = http2.createServer();
    app.on('stream', (s: ServerHttp2Stream) => {
      s.on('error', () => {});
      s.on('close', () => resets.push(s.rstCode ?? -1));
      s.respond({ ':status': 200, 'content-type': 'application/grpc' });
      // A small message first (it must reach the client), then the prefix of a huge one and a
      // little of its body; the stream is then held open, as by an app still producing.
      s.write(Buffer.concat([grpcFrame(Buffer.from([0x12, 0x02, 0x68, 0x69])), grpcFrame(Buffer.alloc(1000), { declaredLength: 1 << 30 })]));
      sent.messages++;
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    proxy = await startProxy(`127.0.0.1:${(app.address() as AddressInfo).port}`, '', { maxMessageBytes: LIMIT });
  });
  afterAll(async () => {
    await proxy.close();
    await new Promise((r) => app.close(r));
  });

  it('ends the call with RESOURCE_EXHAUSTED trailers after the messages that fit, and resets the app stream', async () => {
    const r = await rawCall(proxy.address, { ...GRPC_HEADERS, ':path': '/test.echo.Echo/ServerStream' }, [grpcFrame(Buffer.alloc(0))]);
    expect(r.headers[':status']).toBe(200);
    expect(r.trailers?.['grpc-status']).toBe(String(STATUS.RESOURCE_EXHAUSTED));
    expect(grpcStatusOf(r)).toBe(STATUS.RESOURCE_EXHAUSTED);
    expect(grpcMessageOf(r)).toContain(`response message of ${1 << 30} bytes exceeds the limit of ${LIMIT}`);
    // Exactly the first message went through: none of the refused one, not even its prefix.
    expect(r.body).toEqual(grpcFrame(Buffer.from([0x12, 0x02, 0x68, 0x69])));
    await eventually(() => expect(resets).toEqual([http2.constants.NGHTTP2_CANCEL]));
    expect(await proxy.metric('sluice_grpc_proxy_errors_total', { error: 'SLUICE_ERR_GRPC_MESSAGE_TOO_LARGE' })).toBe(1);
  });
});
