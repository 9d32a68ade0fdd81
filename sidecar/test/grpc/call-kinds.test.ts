import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/eventually.ts';
import { echoClient, startEchoApp, type EchoApp, type EchoClient, type Msg } from './echo-app.ts';
import { grpc, startProxy, STATUS, unaryResult, type ProxyUnderTest } from './harness.ts';

// No policies: these tests are about transparent forwarding of every call kind.
const NO_POLICIES = '';

describe('gRPC proxy forwards every call kind without the .proto', () => {
  let app: EchoApp;
  let proxy: ProxyUnderTest;
  let client: EchoClient;

  beforeAll(async () => {
    app = await startEchoApp();
    proxy = await startProxy(app.address, NO_POLICIES);
    client = echoClient(proxy.address);
  });
  afterAll(async () => {
    client.close();
    await proxy.close();
    await app.close();
  });

  it('unary: payload, request metadata, response headers and trailers all pass through', async () => {
    const md = new grpc.Metadata();
    md.set('x-user', 'ada');
    md.set('x-blob-bin', Buffer.from([0, 1, 2, 255]));
    const payload = Buffer.alloc(100_000, 7);
    const r = await unaryResult<Msg>((cb) => client.Unary({ payload, text: 'hello' }, md, {}, cb));
    expect(r.code).toBe(STATUS.OK);
    expect(r.response?.text).toBe('echo: hello');
    expect(r.response?.payload.equals(payload)).toBe(true);
    expect(r.metadata?.get('x-echo-user')).toEqual(['ada']);
    expect(r.trailers['x-trailer-user']).toBe('ada');
    expect(Buffer.from(r.trailers['x-trailer-blob-bin'] as Buffer).equals(Buffer.from([0, 1, 2, 255]))).toBe(true);
    const seen = app.calls.at(-1);
    expect(seen?.metadata.get('x-user')).toEqual(['ada']);
  });

  it('unary: an error status from the app reaches the client with its message and trailers', async () => {
    const md = new grpc.Metadata();
    md.set('x-why', 'because');
    const r = await unaryResult<Msg>((cb) => client.Unary({ failCode: STATUS.NOT_FOUND }, md, {}, cb));
    expect(r.code).toBe(STATUS.NOT_FOUND);
    expect(r.details).toBe(`failing with ${STATUS.NOT_FOUND} as asked`);
    expect(r.trailers['x-trailer-why']).toBe('because');
    expect(await proxy.metric('sluice_grpc_requests_total', { method: 'test.echo.Echo/Unary', code: 'NOT_FOUND' })).toBe(1);
  });

  it('server streaming: every message arrives in order', async () => {
    const payload = Buffer.alloc(10_000, 3);
    const stream = client.ServerStream({ count: 200, payload });
    const got: number[] = [];
    for await (const m of stream as AsyncIterable<Msg>) {
      expect(m.payload.equals(payload)).toBe(true);
      got.push(m.count);
    }
    expect(got).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it('client streaming: the app receives every message', async () => {
    const r = await unaryResult<Msg>((cb) => {
      const call = client.ClientStream(new grpc.Metadata(), {}, cb);
      for (let i = 0; i < 300; i++) call.write({ payload: Buffer.alloc(1_000 + i) });
      call.end();
      return call;
    });
    expect(r.code).toBe(STATUS.OK);
    expect(r.response?.count).toBe(300);
    expect(r.response?.total).toBe(300 * 1_000 + (299 * 300) / 2);
  });

  it('bidi: messages flow both ways while the call is open', async () => {
    const call = client.Bidi();
    const replies: string[] = [];
    call.on('data', (m: Msg) => replies.push(m.text));
    for (let i = 0; i < 5; i++) {
      call.write({ text: `m${i}` });
      // each reply arrives before the next message is sent: the call is interactive, not batched
      await eventually(() => expect(replies).toHaveLength(i + 1));
    }
    call.end();
    await new Promise((resolve) => call.on('status', resolve));
    expect(replies).toEqual(['echo: m0', 'echo: m1', 'echo: m2', 'echo: m3', 'echo: m4']);
  });

  it('the client deadline is enforced and passed on to the app', async () => {
    const r = await unaryResult<Msg>((cb) => client.Unary({ delayMs: 5_000 }, new grpc.Metadata(), { deadline: Date.now() + 300 }, cb));
    expect(r.code).toBe(STATUS.DEADLINE_EXCEEDED);
    const seen = app.calls.at(-1)!;
    // The app got a finite deadline of about 300 ms (from grpc-timeout), not an open-ended call.
    expect(Number.isFinite(seen.deadline)).toBe(true);
    expect(seen.deadline - Date.now()).toBeLessThan(1_000);
    await eventually(() => expect(seen.cancelled).toBe(true));
  });

  it('a client cancel resets the call at the app', async () => {
    const before = app.calls.length;
    const call = client.Unary({ delayMs: 10_000 }, new grpc.Metadata(), {}, () => {});
    await eventually(() => expect(app.calls.length).toBe(before + 1));
    call.cancel();
    const seen = app.calls[before]!;
    await eventually(() => expect(seen.cancelled).toBe(true));
    expect(seen.ended).toBe(false);
    await eventually(async () => expect(await proxy.metric('sluice_grpc_requests_total', { method: 'test.echo.Echo/Unary', code: 'CANCELLED' })).toBeGreaterThanOrEqual(1));
  });

  it('a client that stops reading a stream stalls the app instead of filling the proxy (flow control)', async () => {
    const h2 = await import('node:http2');
    const session = h2.connect(`http://${proxy.address}`);
    const before = app.streamed.written;
    // 1000 messages of 64 KiB: 64 MiB the proxy would hold if it ignored the client's window.
    const payload = Buffer.alloc(64 * 1024, 1);
    const req = Buffer.concat([Buffer.from([0x0a, 0x80, 0x80, 0x04]), payload, Buffer.from([0x18, 0xe8, 0x07])]); // payload=1, count=1000
    const frame = Buffer.alloc(5 + req.length);
    frame.writeUInt32BE(req.length, 1);
    req.copy(frame, 5);
    const stream = session.request({ ':method': 'POST', ':path': '/test.echo.Echo/ServerStream', 'content-type': 'application/grpc', te: 'trailers' });
    stream.end(frame);
    stream.pause(); // never read
    await eventually(() => expect(app.streamed.written - before).toBeGreaterThan(0));
    await new Promise((r) => setTimeout(r, 1_000));
    const written = app.streamed.written - before;
    // The app's own object-mode writable holds 16 messages, the stream windows and writable
    // buffers along the way a few more; a proxy ignoring backpressure would let all 1000 through.
    expect(written).toBeLessThan(100);
    stream.resume();
    let bytes = 0;
    stream.on('data', (c: Buffer) => (bytes += c.length));
    await new Promise((r) => stream.on('close', r));
    expect(app.streamed.written - before).toBe(1000);
    expect(bytes).toBeGreaterThan(1000 * payload.length);
    session.close();
  });
});
