/** RateLimitPolicy and CircuitBreakerPolicy rules that name an Upstream guard the app's calls out. */
import { afterEach, expect, it } from 'vitest';
import { echoClient, type Msg } from '../grpc/echo-app.ts';
import { grpc, STATUS, unaryResult } from '../grpc/harness.ts';
import { startEndpoint } from './grpc-endpoints.ts';
import { startOutbound } from './harness.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const POLICIES = `
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: calls-out, namespace: test}
spec:
  selector: {}
  rules:
    - name: to-users
      match: {upstream: users}
      limit: {requests: 4, per: 1m}
    - name: inbound-only
      limit: {requests: 1, per: 1m}
---
apiVersion: sluice.dev/v1alpha1
kind: CircuitBreakerPolicy
metadata: {name: calls-out, namespace: test}
spec:
  selector: {}
  rules:
    - name: users-breaker
      match: {upstream: users}
      trip: {consecutiveFailures: 2}
      openDuration: 1m
`;

it('limits and breaks calls through the named Upstream, and inbound-only rules leave them alone', async () => {
  const e = await startEndpoint('e0');
  cleanups.push(() => e.stop());
  const ob = await startOutbound('grpc', [e.address], {}, POLICIES);
  cleanups.push(() => ob.stop());
  const client = echoClient(ob.listen);
  cleanups.push(() => client.close());
  const call = () => unaryResult<Msg>((cb) => client.Unary({}, new grpc.Metadata(), {}, cb));

  // The inbound-only rule (1 per minute) would refuse the second call: it does not apply here.
  expect((await call()).code).toBe(STATUS.OK);
  // Two failures in a row open the circuit of this Upstream.
  e.behaviour.failCode = STATUS.UNAVAILABLE;
  expect((await call()).code).toBe(STATUS.UNAVAILABLE);
  expect((await call()).code).toBe(STATUS.UNAVAILABLE);
  const before = e.calls.length;
  const open = await call();
  expect(open.code).toBe(STATUS.UNAVAILABLE);
  expect(open.details).toMatch(/circuit/i);
  expect(e.calls.length).toBe(before); // refused before any try
  // The fifth call is over the Upstream's limit of 4 a minute.
  expect((await call()).code).toBe(STATUS.RESOURCE_EXHAUSTED);
  expect(await ob.metric('sluice_ratelimit_decisions_total', { rule: 'test/calls-out/to-users', decision: 'allowed' })).toBe(4);
  expect(await ob.metric('sluice_ratelimit_decisions_total', { rule: 'test/calls-out/to-users', decision: 'limited' })).toBe(1);
  expect(await ob.metric('sluice_ratelimit_decisions_total', { rule: 'test/calls-out/inbound-only' })).toBe(0);
});
