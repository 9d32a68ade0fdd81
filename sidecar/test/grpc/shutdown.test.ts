import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/eventually.ts';
import { echoClient, startEchoApp, type EchoApp, type Msg } from './echo-app.ts';
import { grpc, startProxy, STATUS, unaryResult } from './harness.ts';

describe('GrpcProxy.close', () => {
  let app: EchoApp;
  beforeAll(async () => {
    app = await startEchoApp();
  });
  afterAll(async () => {
    await app.close();
  });

  it('lets a call in flight finish, then stops listening', async () => {
    const p = await startProxy(app.address, '');
    const client = echoClient(p.address);
    const inFlight = unaryResult<Msg>((cb) => client.Unary({ delayMs: 300, text: 'last' }, new grpc.Metadata(), {}, cb));
    await eventually(() => expect(app.calls.some((c) => c.method === 'Unary')).toBe(true));
    const closed = p.proxy.close(5_000);
    const r = await inFlight;
    expect(r.code).toBe(STATUS.OK);
    expect(r.response?.text).toBe('echo: last');
    await closed;
    // Nothing listens any more: a new client cannot connect.
    const after = echoClient(p.address);
    const refused = await unaryResult<Msg>((cb) => after.Unary({}, new grpc.Metadata(), { deadline: Date.now() + 2_000 }, cb));
    expect(refused.code).toBe(STATUS.UNAVAILABLE);
    after.close();
    client.close();
    p.engine.close();
  });

  it('cuts calls still running when the grace period ends', async () => {
    const p = await startProxy(app.address, '');
    const client = echoClient(p.address);
    const before = app.calls.length;
    const stuck = unaryResult<Msg>((cb) => client.Unary({ delayMs: 30_000 }, new grpc.Metadata(), {}, cb));
    await eventually(() => expect(app.calls.length).toBe(before + 1));
    await p.proxy.close(200);
    expect((await stuck).code).not.toBe(STATUS.OK);
    await eventually(() => expect(app.calls[before]?.cancelled).toBe(true));
    client.close();
    p.engine.close();
  });
});
