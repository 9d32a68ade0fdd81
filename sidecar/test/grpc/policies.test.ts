import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/eventually.ts';
import { echoClient, startEchoApp, type EchoApp, type EchoClient, type Msg } from './echo-app.ts';
import { grpc, startProxy, STATUS, unaryResult, type CallResult, type ProxyUnderTest } from './harness.ts';

const policy = (kind: string, rules: string) => `
apiVersion: sluice.dev/v1alpha1
kind: ${kind}
metadata: {name: echo, namespace: test}
spec:
  selector: {matchLabels: {app: echo}}
  rules:
${rules}
`;

/** One proxy + app per test: breaker and limiter state must not leak between scenarios. */
function scenario(yaml: string) {
  const s = {} as { app: EchoApp; proxy: ProxyUnderTest; client: EchoClient };
  beforeEach(async () => {
    s.app = await startEchoApp();
    s.proxy = await startProxy(s.app.address, yaml);
    s.client = echoClient(s.proxy.address);
  });
  afterEach(async () => {
    s.client.close();
    await s.proxy.close();
    await s.app.close();
  });
  return s;
}

function unary(client: EchoClient, req: Partial<Msg> = {}, md: Record<string, string> = {}, deadlineMs?: number): Promise<CallResult<Msg>> {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(md)) metadata.set(k, v);
  return unaryResult<Msg>((cb) => client.Unary(req, metadata, deadlineMs ? { deadline: Date.now() + deadlineMs } : {}, cb));
}

describe('rate limits on gRPC methods', () => {
  const s = scenario(policy('RateLimitPolicy', `
    - name: per-tenant
      match: {protocol: grpc, grpcMethods: ["test.echo.Echo/Unary"]}
      limit: {requests: 3, per: 1m}
      key: {source: GrpcMetadata, name: x-tenant}
`));

  it('answers RESOURCE_EXHAUSTED with grpc-retry-pushback-ms past the limit, per metadata key, without reaching the app', async () => {
    for (let i = 0; i < 3; i++) expect((await unary(s.client, {}, { 'x-tenant': 'a' })).code).toBe(STATUS.OK);
    const limited = await unary(s.client, {}, { 'x-tenant': 'a' });
    expect(limited.code).toBe(STATUS.RESOURCE_EXHAUSTED);
    expect(limited.details).toContain('SLUICE_ERR_RATE_LIMITED');
    // A token of a 3-per-minute bucket comes back in 20 s.
    const pushback = Number(limited.trailers['grpc-retry-pushback-ms']);
    expect(pushback).toBeGreaterThan(10_000);
    expect(pushback).toBeLessThanOrEqual(20_000);
    expect(s.app.calls).toHaveLength(3);
    // Another tenant has its own quota; other methods are not limited at all.
    expect((await unary(s.client, {}, { 'x-tenant': 'b' })).code).toBe(STATUS.OK);
    const stream = s.client.ServerStream({ count: 1 });
    for await (const _ of stream as AsyncIterable<Msg>) { /* drain */ }
    expect(await s.proxy.metric('sluice_grpc_requests_total', { method: 'test.echo.Echo/Unary', code: 'RESOURCE_EXHAUSTED' })).toBe(1);
    expect(await s.proxy.metric('sluice_grpc_requests_total', { method: 'test.echo.Echo/Unary', code: 'OK' })).toBe(4);
  });
});

describe('circuit breaking on gRPC status codes', () => {
  const s = scenario(policy('CircuitBreakerPolicy', `
    - name: backend
      match: {protocol: grpc, grpcMethods: ["test.echo.Echo/*"]}
      failureConditions: {grpcCodes: [UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL]}
      trip: {consecutiveFailures: 3}
      openDuration: 1s
      halfOpen: {maxProbes: 1, successesToClose: 2}
`));

  it('trips on UNAVAILABLE from the app, answers UNAVAILABLE while open, and closes again through half-open', async () => {
    s.app.failAll.code = STATUS.UNAVAILABLE;
    for (let i = 0; i < 3; i++) {
      const r = await unary(s.client);
      expect(r.code).toBe(STATUS.UNAVAILABLE);
      expect(r.details).not.toContain('SLUICE_ERR'); // the app's own answer, relayed
    }
    const open = await unary(s.client);
    expect(open.code).toBe(STATUS.UNAVAILABLE);
    expect(open.details).toContain('SLUICE_ERR_CIRCUIT_OPEN');
    expect(Number(open.trailers['grpc-retry-pushback-ms'])).toBeGreaterThan(0);
    expect(s.app.calls).toHaveLength(3); // the open circuit kept the call away from the app
    expect(await s.proxy.metric('sluice_circuit_state', { rule: 'test/echo/backend' })).toBe(1);

    // The app recovers; once openDuration has passed, probes go through and close the circuit.
    s.app.failAll.code = 0;
    await eventually(async () => expect((await unary(s.client)).code).toBe(STATUS.OK), { timeoutMs: 5_000, intervalMs: 100 });
    expect((await unary(s.client)).code).toBe(STATUS.OK);
    expect(await s.proxy.metric('sluice_circuit_state', { rule: 'test/echo/backend' })).toBe(0);
    expect(await s.proxy.metric('sluice_circuit_transitions_total', { rule: 'test/echo/backend', from: 'half-open', to: 'closed' })).toBe(1);
  });

  it('counts non-failure codes as successes: NOT_FOUND from the app never trips the breaker', async () => {
    for (let i = 0; i < 6; i++) expect((await unary(s.client, { failCode: STATUS.NOT_FOUND })).code).toBe(STATUS.NOT_FOUND);
    expect(await s.proxy.metric('sluice_circuit_state', { rule: 'test/echo/backend' })).toBe(0);
  });
});

describe('breaker timeout', () => {
  const s = scenario(policy('CircuitBreakerPolicy', `
    - name: slow
      match: {protocol: grpc, grpcMethods: ["test.echo.Echo/Unary"]}
      failureConditions: {timeout: 300ms}
      trip: {consecutiveFailures: 2}
      openDuration: 30s
`));

  it('answers DEADLINE_EXCEEDED after the call timeout, passes it to the app as grpc-timeout, and counts it as a failure', async () => {
    const r = await unary(s.client, { delayMs: 5_000 });
    expect(r.code).toBe(STATUS.DEADLINE_EXCEEDED);
    expect(r.details).toContain('SLUICE_ERR_GRPC_BREAKER_TIMEOUT');
    const seen = s.app.calls[0]!;
    expect(Number.isFinite(seen.deadline)).toBe(true);
    await eventually(() => expect(seen.cancelled).toBe(true));
    // The second timeout in a row opens the circuit (consecutiveFailures: 2).
    expect((await unary(s.client, { delayMs: 5_000 })).code).toBe(STATUS.DEADLINE_EXCEEDED);
    const open = await unary(s.client);
    expect(open.code).toBe(STATUS.UNAVAILABLE);
    expect(open.details).toContain('SLUICE_ERR_CIRCUIT_OPEN');
  });

  it('a client deadline tighter than the breaker timeout is the one enforced', async () => {
    const r = await unary(s.client, { delayMs: 5_000 }, {}, 100);
    expect(r.code).toBe(STATUS.DEADLINE_EXCEEDED);
    expect(r.details).not.toContain('SLUICE_ERR_GRPC_BREAKER_TIMEOUT');
    expect(s.app.calls[0]!.deadline - Date.now()).toBeLessThan(100);
  });
});

describe('bulkhead', () => {
  const s = scenario(policy('CircuitBreakerPolicy', `
    - name: narrow
      match: {protocol: grpc, grpcMethods: ["test.echo.Echo/Unary"]}
      bulkhead: {maxConcurrentRequests: 1, maxPendingRequests: 0}
`));

  it('answers UNAVAILABLE with pushback while the bulkhead is full, and admits again once a slot frees', async () => {
    const slow = unary(s.client, { delayMs: 1_000 });
    await eventually(() => expect(s.app.calls).toHaveLength(1));
    const full = await unary(s.client);
    expect(full.code).toBe(STATUS.UNAVAILABLE);
    expect(full.details).toContain('SLUICE_ERR_BULKHEAD_FULL');
    expect(Number(full.trailers['grpc-retry-pushback-ms'])).toBeGreaterThan(0);
    expect((await slow).code).toBe(STATUS.OK);
    expect((await unary(s.client)).code).toBe(STATUS.OK);
  });

  it('releases the slot when the client cancels', async () => {
    const call = s.client.Unary({ delayMs: 10_000 }, new grpc.Metadata(), {}, () => {});
    await eventually(() => expect(s.app.calls).toHaveLength(1));
    call.cancel();
    await eventually(async () => expect((await unary(s.client)).code).toBe(STATUS.OK));
  });
});

describe('service wildcards', () => {
  let app: EchoApp;
  let proxy: ProxyUnderTest;
  let client: EchoClient;
  beforeAll(async () => {
    app = await startEchoApp();
    proxy = await startProxy(app.address, policy('RateLimitPolicy', `
    - name: all
      match: {protocol: grpc, grpcMethods: ["test.echo.Echo/*"]}
      limit: {requests: 2, per: 1m, algorithm: SlidingWindow}
`));
    client = echoClient(proxy.address);
  });
  afterAll(async () => {
    client.close();
    await proxy.close();
    await app.close();
  });

  it('a service wildcard limits every method of the service together', async () => {
    expect((await unary(client)).code).toBe(STATUS.OK);
    const stream = client.ServerStream({ count: 1 });
    for await (const _ of stream as AsyncIterable<Msg>) { /* drain */ }
    const r = await unary(client);
    expect(r.code).toBe(STATUS.RESOURCE_EXHAUSTED);
  });
});
