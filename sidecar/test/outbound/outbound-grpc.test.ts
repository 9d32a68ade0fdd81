/**
 * The outbound gRPC path with real grpc-js servers as endpoints and a real grpc-js client on one
 * connection to the sidecar's loopback listener (standalone mode, endpoints listed).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { echoClient, startEchoApp, type EchoApp, type EchoClient, type Msg } from '../grpc/echo-app.ts';
import { grpc, STATUS, unaryResult, type CallResult } from '../grpc/harness.ts';
import { startEndpoint, type TestEndpoint } from './grpc-endpoints.ts';
import { startOutbound, type OutboundUnderTest } from './harness.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(endpoints: TestEndpoint[] | string[], extra: Record<string, unknown> = {}): Promise<{ ob: OutboundUnderTest; client: EchoClient }> {
  const addresses = endpoints.map((e) => (typeof e === 'string' ? e : e.address));
  const ob = await startOutbound('grpc', addresses, extra);
  cleanups.push(() => ob.stop());
  const client = echoClient(ob.listen);
  cleanups.push(() => client.close());
  return { ob, client };
}

async function endpoints(n: number, behaviour: Parameters<typeof startEndpoint>[1] = {}): Promise<TestEndpoint[]> {
  const out: TestEndpoint[] = [];
  for (let i = 0; i < n; i++) {
    const e = await startEndpoint(`e${i}`, behaviour);
    cleanups.push(() => e.stop());
    out.push(e);
  }
  return out;
}

const unary = (client: EchoClient, req: Partial<Msg> = {}, opts: grpc.CallOptions = {}): Promise<CallResult<Msg>> =>
  unaryResult<Msg>((cb) => client.Unary(req, new grpc.Metadata(), opts, cb));

/** `total` unary calls, `inFlight` at a time, all on the one client connection. */
async function load(client: EchoClient, total: number, inFlight: number, opts: grpc.CallOptions = {}): Promise<CallResult<Msg>[]> {
  const results: CallResult<Msg>[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < total) {
      next++;
      results.push(await unary(client, {}, opts));
    }
  }));
  return results;
}

describe('every call kind through the outbound path', () => {
  let app: EchoApp;

  it('unary with metadata, server and client streaming, bidi; deadlines and cancellation reach the endpoint', async () => {
    app = await startEchoApp();
    cleanups.push(() => app.close());
    const { client } = await setup([app.address]);
    const md = new grpc.Metadata();
    md.set('x-user', 'ada');
    md.set('x-blob-bin', Buffer.from([0, 1, 255]));
    const r = await unaryResult<Msg>((cb) => client.Unary({ text: 'hi', payload: Buffer.alloc(200_000, 3) }, md, { deadline: Date.now() + 5_000 }, cb));
    expect(r.code).toBe(STATUS.OK);
    expect(r.response?.text).toBe('echo: hi');
    expect(r.response?.payload.length).toBe(200_000);
    expect(r.metadata?.get('x-echo-user')).toEqual(['ada']);
    expect(r.trailers['x-trailer-user']).toBe('ada');
    const seen = app.calls.at(-1)!;
    expect(seen.metadata.get('x-user')).toEqual(['ada']);
    expect(seen.deadline).toBeLessThanOrEqual(Date.now() + 5_000);
    expect(seen.deadline).toBeGreaterThan(Date.now());

    const streamed: Msg[] = [];
    await new Promise<void>((resolve, reject) => {
      const s = client.ServerStream({ count: 50, text: 's' });
      s.on('data', (m: Msg) => streamed.push(m));
      s.on('error', reject);
      s.on('end', () => resolve());
    });
    expect(streamed.map((m) => m.count)).toEqual(Array.from({ length: 50 }, (_, i) => i));

    const summed = await new Promise<Msg>((resolve, reject) => {
      const w = client.ClientStream(new grpc.Metadata(), {}, (err, res) => (err ? reject(err) : resolve(res!)));
      for (let i = 0; i < 20; i++) w.write({ payload: Buffer.alloc(1000) });
      w.end();
    });
    expect([summed.total, summed.count]).toEqual([20_000, 20]);

    const echoed: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const d = client.Bidi();
      d.on('data', (m: Msg) => {
        echoed.push(m.text);
        if (echoed.length === 3) d.end();
      });
      d.on('error', reject);
      d.on('end', () => resolve());
      for (const t of ['a', 'b', 'c']) d.write({ text: t });
    });
    expect(echoed).toEqual(['echo: a', 'echo: b', 'echo: c']);

    // Cancellation: the client gives up on a slow stream; the endpoint hears of it.
    const before = app.calls.length;
    const s = client.ServerStream({ count: 1000, delayMs: 50 });
    s.on('error', () => {});
    s.on('data', () => {});
    await eventually(() => expect(app.calls.length).toBe(before + 1));
    s.cancel();
    await eventually(() => expect(app.calls.at(-1)!.cancelled).toBe(true));
  });
});

describe('load balancing', () => {
  it('spreads 16 calls in flight on one client connection evenly over 3 endpoints (±20 %)', async () => {
    const eps = await endpoints(3, { delayMs: 5 });
    const { client } = await setup(eps);
    const results = await load(client, 600, 16);
    expect(results.every((r) => r.code === STATUS.OK)).toBe(true);
    for (const e of eps) {
      expect(e.calls.length, e.name).toBeGreaterThanOrEqual(160);
      expect(e.calls.length, e.name).toBeLessThanOrEqual(240);
    }
  });

  it('LeastRequest sends a 10× slower endpoint at most 10 % of the calls', async () => {
    // 20 ms against 200 ms: wide enough that a loaded machine's scheduling delays, which slow
    // every endpoint alike, do not blur the 10× difference.
    const eps = await endpoints(3, { delayMs: 20 });
    eps[2]!.behaviour.delayMs = 200;
    const { client } = await setup(eps);
    await load(client, 600, 16);
    const total = eps.reduce((s, e) => s + e.calls.length, 0);
    expect(total).toBe(600);
    expect(eps[2]!.calls.length / total).toBeLessThanOrEqual(0.1);
  });

  it('answers UNAVAILABLE at once, saying why, when the upstream has no endpoint or none connects', async () => {
    const { ob, client } = await setup(['127.0.0.1:1']);
    const refused = await unary(client);
    expect(refused.code).toBe(STATUS.UNAVAILABLE); // port 1 refuses: a connect failure
    expect(refused.details).toMatch(/SLUICE_ERR_OUTBOUND_CONNECT/);
    // An endpoint update with no ready address, as the operator sends when every pod is gone.
    ob.sc.sidecar.outbound!.runtime('test/users')!.setEndpoints([]);
    const started = Date.now();
    const none = await unary(client, {}, { deadline: Date.now() + 10_000 });
    expect(none.code).toBe(STATUS.UNAVAILABLE);
    expect(none.details).toMatch(/has no ready endpoint.*SLUICE_ERR_OUTBOUND_NO_ENDPOINTS/);
    expect(Date.now() - started).toBeLessThan(5_000); // at once, not at the deadline
  });
});

const RETRY = { attempts: 3, backoff: { initial: '5ms', max: '20ms' }, budget: { percent: 20, minPerSecond: 0, window: '10s' } };

describe('retries (gRFC A6) within a budget', () => {
  it('one endpoint killed under load: no unary call fails, and retries stay within the budget', async () => {
    const eps = await endpoints(3, { delayMs: 5 });
    const { ob, client } = await setup(eps, { retry: { ...RETRY, budget: { percent: 20, minPerSecond: 5, window: '10s' } } });
    const running = load(client, 900, 16);
    await eventually(() => expect(eps[0]!.calls.length).toBeGreaterThan(50));
    eps[0]!.kill();
    const results = await running;
    const failed = results.filter((r) => r.code !== STATUS.OK);
    expect(failed.map((r) => r.details)).toEqual([]);
    const retries = await ob.metric('sluice_outbound_retries_total');
    expect(retries).toBeGreaterThan(0); // the calls in flight on the killed endpoint were retried
    expect(retries).toBeLessThanOrEqual(5 * 10 + 0.2 * 900);
  });

  it('a dependency failing every call sees no more than the budget of retries', async () => {
    const [e] = await endpoints(1, { failCode: STATUS.UNAVAILABLE });
    const { ob, client } = await setup([e!], { retry: { ...RETRY, attempts: 5 } });
    const results = await load(client, 200, 4);
    expect(results.every((r) => r.code === STATUS.UNAVAILABLE)).toBe(true);
    // 200 calls earn 20 % of a retry each: 40 retries at most, however many attempts allow.
    expect(e!.calls.length).toBeGreaterThan(200);
    expect(e!.calls.length).toBeLessThanOrEqual(240);
    expect(await ob.metric('sluice_outbound_retry_budget_exhausted_total')).toBeGreaterThan(0);
  });

  it('a retry goes to another endpoint and says which attempt it is; pushback -1 stops retries', async () => {
    const [bad, good] = await endpoints(2);
    bad!.behaviour.failCode = STATUS.UNAVAILABLE;
    const { client } = await setup([bad!, good!], { retry: { ...RETRY, budget: { percent: 100, minPerSecond: 100 } } });
    const results = await load(client, 20, 1);
    expect(results.every((r) => r.code === STATUS.OK)).toBe(true);
    expect(good!.calls.some((c) => c.previousAttempts === '1')).toBe(true);
    expect(bad!.calls.every((c) => c.previousAttempts === undefined)).toBe(true);
    good!.behaviour.failCode = STATUS.UNAVAILABLE;
    bad!.behaviour.pushback = '-1';
    good!.behaviour.pushback = '-1';
    const before = bad!.calls.length + good!.calls.length;
    const r = await unary(client);
    expect(r.code).toBe(STATUS.UNAVAILABLE);
    expect(bad!.calls.length + good!.calls.length).toBe(before + 1);
  });

  it('nothing is retried once the response has started', async () => {
    const [e] = await endpoints(1, { failCode: STATUS.UNAVAILABLE, headersFirst: true });
    const { client } = await setup([e!], { retry: { ...RETRY, budget: { percent: 100, minPerSecond: 100 } } });
    const r = await unary(client);
    expect(r.code).toBe(STATUS.UNAVAILABLE);
    expect(e!.calls).toHaveLength(1);
  });

  it('a try slower than perTryTimeout is retried; when every try is, DEADLINE_EXCEEDED says so', async () => {
    const [e] = await endpoints(1, { delayMs: 1_500 });
    const { client } = await setup([e!], { timeout: '5s', retry: { ...RETRY, attempts: 2, perTryTimeout: '200ms', budget: { percent: 100, minPerSecond: 100 } } });
    const r = await unary(client);
    expect(r.code).toBe(STATUS.DEADLINE_EXCEEDED);
    expect(r.details).toMatch(/SLUICE_ERR_OUTBOUND_TRY_TIMEOUT/);
    expect(e!.calls).toHaveLength(2);
    expect(e!.calls[1]!.previousAttempts).toBe('1');
  });

  it('the overall timeout ends the call with DEADLINE_EXCEEDED, and each try is told the time left', async () => {
    const [e] = await endpoints(1, { delayMs: 3_000 });
    const { client } = await setup([e!], { timeout: '300ms' });
    const started = Date.now();
    const r = await unary(client);
    expect(r.code).toBe(STATUS.DEADLINE_EXCEEDED);
    expect(r.details).toMatch(/upstream timeout of 300 ms.*SLUICE_ERR_OUTBOUND_TIMEOUT/);
    expect(Date.now() - started).toBeLessThan(2_500);
    expect(e!.calls[0]!.deadline).toBeLessThanOrEqual(started + 400);
  });
});

describe('outlier detection', () => {
  it('ejects an endpoint that keeps failing and lets it back after the ejection time', async () => {
    const [bad, good] = await endpoints(2);
    bad!.behaviour.failCode = STATUS.UNAVAILABLE;
    const { ob, client } = await setup([bad!, good!], {
      retry: { ...RETRY, budget: { percent: 100, minPerSecond: 100 } },
      outlierDetection: { consecutiveFailures: 3, baseEjectionTime: '1s', interval: '10s', maxEjectionPercent: 50 },
    });
    await eventually(async () => {
      await unary(client);
      expect(await ob.metric('sluice_outbound_ejections_total', { endpoint: bad!.address })).toBe(1);
    });
    const whileEjected = bad!.calls.length;
    const results = await load(client, 30, 2);
    expect(results.every((r) => r.code === STATUS.OK)).toBe(true);
    expect(bad!.calls.length).toBe(whileEjected); // no traffic while ejected
    expect(await ob.metric('sluice_outbound_endpoints', { state: 'ejected' })).toBe(1);
    bad!.behaviour.failCode = 0; // it recovers
    await sleep(1_100);
    await eventually(async () => {
      await load(client, 10, 2);
      expect(bad!.calls.length).toBeGreaterThan(whileEjected);
    });
    expect(await ob.metric('sluice_outbound_endpoints', { state: 'ready' })).toBe(2);
  });
});
