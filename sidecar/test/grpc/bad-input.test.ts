import net from 'node:net';
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/eventually.ts';
import { freePort } from '../../../lib/net.ts';
import { echoClient, startEchoApp, type EchoApp, type EchoClient, type Msg } from './echo-app.ts';
import { grpc, startProxy, STATUS, unaryResult, type ProxyUnderTest } from './harness.ts';
import { GRPC_HEADERS, grpcFrame, grpcMessageOf, grpcStatusOf, rawCall } from './raw-h2.ts';

const LIMIT = 256 * 1024;
const UNARY = '/test.echo.Echo/Unary';
const CLIENT_STREAM = '/test.echo.Echo/ClientStream';

/** Serialized size of Msg{payload: n bytes}: tag, varint length, bytes. */
function msgSize(n: number): number {
  let varint = 1;
  for (let v = n; v >= 0x80; v >>>= 7) varint++;
  return 1 + varint + n;
}

describe('bad input on the gRPC port', () => {
  let app: EchoApp;
  let proxy: ProxyUnderTest;
  let client: EchoClient;

  beforeAll(async () => {
    app = await startEchoApp();
    proxy = await startProxy(app.address, '', { maxMessageBytes: LIMIT });
    client = echoClient(proxy.address, { 'grpc.max_send_message_length': -1 });
  });
  afterAll(async () => {
    client.close();
    await proxy.close();
    await app.close();
  });

  /** The listener still serves real calls: the process and the listener lived through the abuse. */
  async function stillServes(): Promise<void> {
    const r = await unaryResult<Msg>((cb) => client.Unary({ text: 'alive?' }, new grpc.Metadata(), {}, cb));
    expect(r.code).toBe(STATUS.OK);
  }

  const errors = (error: string) => proxy.metric('sluice_grpc_proxy_errors_total', { error });

  it('refuses a non-gRPC content type with HTTP 415 and a grpc-status', async () => {
    const r = await rawCall(proxy.address, { ...GRPC_HEADERS, ':path': UNARY, 'content-type': 'application/json' }, [Buffer.from('{}')]);
    expect(r.headers[':status']).toBe(415);
    expect(grpcStatusOf(r)).toBe(STATUS.INTERNAL);
    expect(grpcMessageOf(r)).toContain('SLUICE_ERR_GRPC_CONTENT_TYPE');
    expect(await errors('SLUICE_ERR_GRPC_CONTENT_TYPE')).toBe(1);
  });

  it('refuses a GET, a path that is not /Service/Method and a malformed grpc-timeout', async () => {
    const get = await rawCall(proxy.address, { ...GRPC_HEADERS, ':method': 'GET', ':path': UNARY });
    expect(get.headers[':status']).toBe(405);
    const path = await rawCall(proxy.address, { ...GRPC_HEADERS, ':path': '/just-one-segment' }, [grpcFrame(Buffer.alloc(0))]);
    expect(grpcStatusOf(path)).toBe(STATUS.UNIMPLEMENTED);
    const timeout = await rawCall(proxy.address, { ...GRPC_HEADERS, ':path': UNARY, 'grpc-timeout': 'soon' }, [grpcFrame(Buffer.alloc(0))]);
    expect(grpcStatusOf(timeout)).toBe(STATUS.INTERNAL);
    expect(grpcMessageOf(timeout)).toContain('SLUICE_ERR_GRPC_TIMEOUT_HEADER');
    await stillServes();
  });

  it('answers a malformed length prefix with INTERNAL and resets the call at the app', async () => {
    const before = app.calls.length;
    const r = await rawCall(proxy.address, { ...GRPC_HEADERS, ':path': CLIENT_STREAM }, [grpcFrame(Buffer.from([0x0a, 0x00])), grpcFrame(Buffer.alloc(3), { flag: 7 })], { keepOpen: true });
    expect(grpcStatusOf(r)).toBe(STATUS.INTERNAL);
    expect(grpcMessageOf(r)).toContain('SLUICE_ERR_GRPC_MALFORMED_MESSAGE');
    // The app had started the call with the first, valid message; it must not see it complete.
    await eventually(() => expect(app.calls[before]?.cancelled).toBe(true));
    await stillServes();
  });

  it('answers a request that ends inside a message with INTERNAL', async () => {
    const r = await rawCall(proxy.address, { ...GRPC_HEADERS, ':path': UNARY }, [grpcFrame(Buffer.alloc(10), { declaredLength: 100 })]);
    expect(grpcStatusOf(r)).toBe(STATUS.INTERNAL);
    expect(grpcMessageOf(r)).toContain('SLUICE_ERR_GRPC_TRUNCATED_MESSAGE');
  });

  it('refuses a message declared over the limit from its prefix alone, without waiting for (or buffering) its body', async () => {
    // 1 GiB announced, 5 bytes sent: only a proxy that decides on the prefix can answer this.
    const r = await rawCall(proxy.address, { ...GRPC_HEADERS, ':path': UNARY }, [grpcFrame(Buffer.alloc(0), { declaredLength: 1 << 30 })], { keepOpen: true });
    expect(grpcStatusOf(r)).toBe(STATUS.RESOURCE_EXHAUSTED);
    expect(grpcMessageOf(r)).toContain('SLUICE_ERR_GRPC_MESSAGE_TOO_LARGE');
    // The client, still sending, is told to stop with RST_STREAM(NO_ERROR) after the answer.
    expect(r.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
  });

  it('forwards a message of exactly the limit and refuses one byte more (grpc-js client)', async () => {
    const n = LIMIT - (msgSize(LIMIT) - LIMIT);
    expect(msgSize(n)).toBe(LIMIT);
    // ClientStream answers with a small summary: Unary would echo the payload back, and that
    // response (the request plus its `text`) is itself held to the limit (response-limit.test.ts).
    const ok = await unaryResult<Msg>((cb) => {
      const call = client.ClientStream(new grpc.Metadata(), {}, cb);
      call.end({ payload: Buffer.alloc(n, 1) });
      return call;
    });
    expect(ok.code).toBe(STATUS.OK);
    expect(ok.response?.total).toBe(n);
    const over = await unaryResult<Msg>((cb) => client.Unary({ payload: Buffer.alloc(n + 1, 1) }, new grpc.Metadata(), {}, cb));
    expect(over.code).toBe(STATUS.RESOURCE_EXHAUSTED);
    expect(over.details).toContain('SLUICE_ERR_GRPC_MESSAGE_TOO_LARGE');
  });

  it('streams many messages under the limit, and stops a client stream at the first one over it', async () => {
    const before = app.calls.length;
    const r = await unaryResult<Msg>((cb) => {
      const call = client.ClientStream(new grpc.Metadata(), {}, cb);
      for (let i = 0; i < 20; i++) call.write({ payload: Buffer.alloc(LIMIT - 8) }); // 5 MiB in all
      call.write({ payload: Buffer.alloc(LIMIT) });
      call.end();
      return call;
    });
    expect(r.code).toBe(STATUS.RESOURCE_EXHAUSTED);
    await eventually(() => expect(app.calls[before]?.cancelled).toBe(true));
  });

  it('answers HTTP/1.1 with a readable 505 and lives on', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(proxy.port, '127.0.0.1', () => socket.write('POST /test.echo.Echo/Unary HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'));
      let out = '';
      socket.on('data', (d) => (out += d.toString('latin1')));
      socket.on('close', () => resolve(out));
      socket.on('error', reject);
    });
    expect(text.startsWith('HTTP/1.1 505 ')).toBe(true);
    expect(text).toContain('h2c');
    expect(await errors('SLUICE_ERR_GRPC_HTTP1')).toBe(1);
    await stillServes();
  });

  it('drops a connection that opens with garbage, and one that sends invalid frames after the preface', async () => {
    const closed = (payload: Buffer) => new Promise<void>((resolve, reject) => {
      const socket = net.connect(proxy.port, '127.0.0.1', () => socket.write(payload));
      socket.on('data', () => {});
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    await closed(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0xff, 0xfe, 0x00, 0x01])); // a TLS ClientHello on the h2c port
    expect(await errors('SLUICE_ERR_GRPC_BAD_PREFACE')).toBe(1);
    // The preface, then a DATA frame on stream 0 (a connection error, RFC 9113 §6.1).
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
    const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
    const badData = Buffer.from([0, 0, 4, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    await closed(Buffer.concat([preface, settings, badData]));
    await stillServes();
  });

  it('answers UNAVAILABLE when the app cannot be reached, and serves again once it can', async () => {
    const port = await freePort();
    const down = await startProxy(`127.0.0.1:${port}`, '');
    const c = echoClient(down.address);
    try {
      const r = await unaryResult<Msg>((cb) => c.Unary({}, new grpc.Metadata(), {}, cb));
      expect(r.code).toBe(STATUS.UNAVAILABLE);
      expect(r.details).toContain('SLUICE_ERR_GRPC_UPSTREAM_CONNECT');
      const late = await startEchoApp({ port });
      try {
        const again = await unaryResult<Msg>((cb) => c.Unary({}, new grpc.Metadata(), {}, cb));
        expect(again.code).toBe(STATUS.OK);
      } finally {
        await late.close();
      }
    } finally {
      c.close();
      await down.close();
    }
  });

  it('answers UNAVAILABLE when the app dies in the middle of a stream', async () => {
    const dying = await startEchoApp();
    const p = await startProxy(dying.address, '');
    const c = echoClient(p.address);
    try {
      const stream = c.ServerStream({ count: 1000, delayMs: 20 });
      const status = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
      stream.on('data', () => {});
      stream.on('error', () => {});
      await eventually(() => expect(dying.streamed.written).toBeGreaterThan(2));
      await dying.close(); // graceful close gives up after 500 ms and cuts the connection
      expect((await status).code).toBe(STATUS.UNAVAILABLE);
    } finally {
      c.close();
      await p.close();
    }
  });
});
