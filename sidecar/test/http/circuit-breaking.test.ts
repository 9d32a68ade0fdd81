import { fetch } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type TestApp } from '../../../test/helpers/app-server.ts';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';

/** The app's behaviour, switched by tests: answer status `status` after `delayMs` (and `gate`), or hang. */
const behaviour: { status: number; delayMs: number; hang: boolean; gate?: Promise<void> } = { status: 200, delayMs: 0, hang: false };
let app: TestApp;
let sc: RunningSidecar | undefined;

beforeAll(async () => {
  app = await startApp(async (_req, res) => {
    if (behaviour.hang) return true; // never answers
    if (behaviour.delayMs) await sleep(behaviour.delayMs);
    if (behaviour.gate) await behaviour.gate;
    res.writeHead(behaviour.status);
    res.end(String(behaviour.status));
    return true;
  });
});
afterAll(() => app.close());
afterEach(async () => {
  Object.assign(behaviour, { status: 200, delayMs: 0, hang: false, gate: undefined });
  await sc?.stop(100);
  sc = undefined;
});

const breaker = (rule: string) => `
apiVersion: sluice.dev/v1alpha1
kind: CircuitBreakerPolicy
metadata: {name: backend, namespace: shop}
spec:
  selector: {}
  rules:
    - name: app
${rule}`;

async function get(path = '/x'): Promise<{ status: number; retryAfter: string | null; body: string }> {
  const res = await fetch(`${sc!.url}${path}`);
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
}

describe('circuit breaking on HTTP', () => {
  it('consecutive 5xx open the circuit: 503 with Retry-After, and nothing reaches the app', async () => {
    sc = await startSidecar(breaker(`
      trip: {consecutiveFailures: 3}
      openDuration: 1m`), { appHttp: app.hostPort });
    behaviour.status = 500;
    for (let i = 0; i < 3; i++) expect((await get()).status).toBe(500);
    const seen = app.received.length;
    const open = await get();
    expect(open.status).toBe(503);
    expect(Number(open.retryAfter)).toBeGreaterThan(50);
    expect(JSON.parse(open.body).code).toBe('SLUICE_ERR_CIRCUIT_OPEN');
    expect(app.received.length).toBe(seen);
    const metrics = await (await fetch(`${sc.admin}/metrics`)).text();
    expect(metrics).toMatch(/sluice_circuit_state\{rule="shop\/backend\/app"\} 1/);
  });

  it('only the declared statuses count: 404 does not trip a 5xx breaker', async () => {
    sc = await startSidecar(breaker(`
      failureConditions: {httpStatuses: ["5xx"]}
      trip: {consecutiveFailures: 2}`), { appHttp: app.hostPort });
    behaviour.status = 404;
    for (let i = 0; i < 5; i++) expect((await get()).status).toBe(404);
  });

  it('the failure rate over minimumRequests opens it', async () => {
    sc = await startSidecar(breaker(`
      trip: {failureRatePercent: 50, minimumRequests: 10, window: 1m}`), { appHttp: app.hostPort });
    for (let i = 0; i < 5; i++) expect((await get()).status).toBe(200);
    behaviour.status = 503;
    for (let i = 0; i < 5; i++) expect((await get()).status).toBe(503);
    behaviour.status = 200;
    const next = await get();
    expect(next.status).toBe(503);
    expect(JSON.parse(next.body).code).toBe('SLUICE_ERR_CIRCUIT_OPEN');
  });

  it('the slow-call rate opens it', async () => {
    sc = await startSidecar(breaker(`
      trip: {slowCallDuration: 50ms, slowCallRatePercent: 60, minimumRequests: 3, window: 1m}`), { appHttp: app.hostPort });
    behaviour.delayMs = 120;
    for (let i = 0; i < 3; i++) expect((await get()).status).toBe(200);
    behaviour.delayMs = 0;
    expect(JSON.parse((await get()).body).code).toBe('SLUICE_ERR_CIRCUIT_OPEN');
  });

  it('a call slower than failureConditions.timeout is answered 504 and counts as a failure', async () => {
    sc = await startSidecar(breaker(`
      failureConditions: {timeout: 100ms}
      trip: {consecutiveFailures: 2}`), { appHttp: app.hostPort });
    behaviour.delayMs = 2_000;
    const r = await get();
    expect(r.status).toBe(504);
    expect(JSON.parse(r.body).code).toBe('SLUICE_ERR_UPSTREAM_TIMEOUT');
    expect((await get()).status).toBe(504);
    expect((await get()).status).toBe(503);
  });

  it('half-open lets only maxProbes of 100 concurrent callers through, then closes after successesToClose', async () => {
    sc = await startSidecar(breaker(`
      trip: {consecutiveFailures: 1}
      openDuration: 1s
      halfOpen: {maxProbes: 3, successesToClose: 3}`), { appHttp: app.hostPort });
    behaviour.status = 500;
    expect((await get()).status).toBe(500);
    expect((await get()).status).toBe(503);
    await sleep(1_100);
    behaviour.status = 200;
    // The probes stay in flight until every caller has been decided (refused, or at the app), so
    // the outcome does not depend on how fast 100 requests arrive on a loaded machine.
    let open!: () => void;
    behaviour.gate = new Promise<void>((resolve) => (open = resolve));
    const seen = app.received.length;
    let refused = 0;
    const pending = Promise.all(Array.from({ length: 100 }, () => get().then((r) => {
      if (r.status === 503) refused++;
      return r;
    })));
    await eventually(() => expect(refused + app.received.length - seen).toBe(100), { timeoutMs: 20_000 });
    open();
    const results = await pending;
    expect(results.filter((r) => r.status === 200)).toHaveLength(3);
    expect(results.filter((r) => r.status === 503)).toHaveLength(97);
    expect(app.received.length - seen).toBe(3);
    behaviour.gate = undefined;
    expect((await get()).status).toBe(200); // closed after 3 successful probes
  });

  it('a hung probe times out and reopens the circuit', async () => {
    sc = await startSidecar(breaker(`
      trip: {consecutiveFailures: 1}
      openDuration: 300ms
      halfOpen: {maxProbes: 1, successesToClose: 1}`), { appHttp: app.hostPort });
    behaviour.status = 500;
    await get();
    await sleep(400);
    behaviour.hang = true;
    const probe = await get(); // the probe times out after openDuration
    expect(probe.status).toBe(504);
    behaviour.hang = false;
    behaviour.status = 200;
    const after = await get();
    expect(after.status).toBe(503); // reopened (with backoff), not stuck half-open
    await eventually(async () => expect((await get()).status).toBe(200), { timeoutMs: 5_000, intervalMs: 100 });
  });

  it('a full bulkhead answers 503 at once; waiters within maxPendingRequests are served', async () => {
    sc = await startSidecar(breaker(`
      bulkhead: {maxConcurrentRequests: 2, maxPendingRequests: 2, maxPendingWait: 10s}`), { appHttp: app.hostPort });
    behaviour.delayMs = 1_500; // long enough that all 8 arrive while the first 2 are in flight
    const results = await Promise.all(Array.from({ length: 8 }, () => get()));
    const ok = results.filter((r) => r.status === 200).length;
    const full = results.filter((r) => r.status === 503);
    expect(ok).toBe(4);
    expect(full).toHaveLength(4);
    for (const r of full) expect(JSON.parse(r.body).code).toBe('SLUICE_ERR_BULKHEAD_FULL');
  });

  it('DryRun never rejects, even with the circuit open', async () => {
    sc = await startSidecar(breaker(`
      trip: {consecutiveFailures: 1}
      openDuration: 1m`).replace('  rules:', '  mode: DryRun\n  rules:'), { appHttp: app.hostPort });
    behaviour.status = 500;
    for (let i = 0; i < 4; i++) expect((await get()).status).toBe(500);
    const metrics = await (await fetch(`${sc.admin}/metrics`)).text();
    expect(metrics).toMatch(/decision="would_break"\} 3/);
  });
});
