/** --grpc-max-connection-age: old client connections get GOAWAY, calls open on them finish. */
import http2 from 'node:http2';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/eventually.ts';
import { echoClient, startEchoApp, type EchoApp, type Msg } from './echo-app.ts';
import { startProxy, STATUS, unaryResult, grpc, type ProxyUnderTest } from './harness.ts';

let app: EchoApp;
let proxy: ProxyUnderTest;

beforeAll(async () => {
  app = await startEchoApp();
  proxy = await startProxy(app.address, '', { maxConnectionAgeMs: 300, maxConnectionAgeGraceMs: 5_000 });
});
afterAll(async () => {
  await proxy.close();
  await app.close();
});

it('sends GOAWAY to a connection past its age, and lets the call open on it finish within the grace', async () => {
  const session = http2.connect(`http://${proxy.address}`);
  session.on('error', () => {});
  const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
  const client = echoClient(proxy.address);
  try {
    // A stream that outlives the age: 10 messages 100 ms apart.
    const started = Date.now();
    const got: Msg[] = [];
    const streamDone = new Promise<grpc.StatusObject>((resolve) => {
      const s = client.ServerStream({ count: 10, delayMs: 100 });
      s.on('data', (m: Msg) => got.push(m));
      s.on('error', () => {});
      s.on('status', resolve);
    });
    await goaway;
    expect(Date.now() - started).toBeLessThan(5_000);
    const status = await streamDone;
    expect(status.code).toBe(STATUS.OK);
    expect(got).toHaveLength(10);
    // The client dials anew: calls keep working after the GOAWAY.
    const r = await unaryResult<Msg>((cb) => client.Unary({ text: 'again' }, new grpc.Metadata(), {}, cb));
    expect(r.code).toBe(STATUS.OK);
    await eventually(async () => expect(await proxy.metric('sluice_grpc_proxy_errors_total', { error: 'SLUICE_INFO_GRPC_MAX_CONNECTION_AGE' })).toBeGreaterThanOrEqual(2));
  } finally {
    client.close();
    session.destroy();
  }
});
