import { fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type TestApp } from '../../../test/helpers/app-server.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';
import { grpcRejection, httpRejection } from '../../src/policy-engine/responses.ts';
import { compilePlan } from '../../../lib/policy/compile.ts';

let app: TestApp;
let sc: RunningSidecar;
beforeAll(async () => {
  app = await startApp();
  // 10 per minute: nothing refills while the test runs. 30 % of it is kept from sheddable, 15 % from default.
  sc = await startSidecar(`
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: api, namespace: shop}
spec:
  selector: {}
  rules:
    - name: shared
      limit: {requests: 10, per: 1m}
      priority: {key: {source: Header, name: x-priority}, levels: [critical, default, sheddable], default: sheddable, reserved: 15}
`, { appHttp: app.hostPort });
});
afterAll(async () => {
  await sc.stop(100);
  await app.close();
});

async function call(level?: string): Promise<{ status: number; body: string; retryAfter: string | null }> {
  const res = await fetch(`${sc.url}/x`, { headers: level ? { 'x-priority': level } : {} });
  return { status: res.status, body: await res.text(), retryAfter: res.headers.get('retry-after') };
}

describe('priority levels on a rate-limit rule (real sockets)', () => {
  it('sheddable runs out first, then default; critical keeps the reserve; a refusal takes no token', async () => {
    const received = app.received.length;
    const sheddable: number[] = [];
    for (let i = 0; i < 10; i++) sheddable.push((await call()).status); // missing header → sheddable
    expect(sheddable.filter((s) => s === 200)).toHaveLength(7); // up to 70 % of the bucket
    const shed = await call('sheddable');
    expect(shed.status).toBe(429);
    expect(Number(shed.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(shed.body)).toMatchObject({ code: 'SLUICE_ERR_PRIORITY_SHED', level: 'sheddable', rule: 'shop/api/shared' });
    expect((await call('default')).status).toBe(200); // 8 of 10: under default's 85 %
    expect((await call('default')).status).toBe(429);
    expect((await call('CRITICAL')).status).toBe(200);
    expect((await call('critical')).status).toBe(200);
    const over = await call('critical');
    expect(over.status).toBe(429);
    expect(JSON.parse(over.body).code).toBe('SLUICE_ERR_RATE_LIMITED');
    expect(app.received.length - received).toBe(10); // every admitted request, and only those
  });
});

describe('the rejection table maps shedding once per protocol', () => {
  const plan = compilePlan([{
    apiVersion: 'sluice.dev/v1alpha1', kind: 'CircuitBreakerPolicy', metadata: { name: 'b', namespace: 'shop' },
    spec: { selector: {}, rules: [{ name: 'r', adaptiveConcurrency: {}, priority: { key: { source: 'Header', name: 'x-p' }, levels: ['hi', 'lo'] } }] },
  }]);
  const rule = plan.breakers[0]!;

  it('adaptive refusals: 503 + Retry-After, RESOURCE_EXHAUSTED + pushback', () => {
    const h = httpRejection({ reason: 'concurrency_limited', retryAfterMs: 1000, rule });
    expect(h.status).toBe(503);
    expect(h.headers['retry-after']).toBe('1');
    expect(JSON.parse(h.body).code).toBe('SLUICE_ERR_CONCURRENCY_LIMITED');
    const g = grpcRejection({ reason: 'concurrency_limited', retryAfterMs: 1000, rule });
    expect(g.code).toBe(8);
    expect(g.headers['grpc-retry-pushback-ms']).toBe('1000');
  });

  it('priority refusals of a breaker rule: 503, and RESOURCE_EXHAUSTED naming the level', () => {
    expect(httpRejection({ reason: 'priority_shed', retryAfterMs: 1000, rule, level: 'lo' }).status).toBe(503);
    const g = grpcRejection({ reason: 'priority_shed', retryAfterMs: 1000, rule, level: 'lo' });
    expect(g.code).toBe(8);
    expect(g.message).toMatch(/level lo.*SLUICE_ERR_PRIORITY_SHED/);
  });
});
