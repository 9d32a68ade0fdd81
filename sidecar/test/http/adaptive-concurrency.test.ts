import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, fetch } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';

/**
 * An app with a fixed number of workers, each taking `serviceMs` per call; calls beyond the
 * workers queue inside the app, so its latency grows with the concurrency it is offered.
 */
class SlotApp {
  slots: number;
  readonly serviceMs: number;
  busy = 0;
  private readonly waiting: (() => void)[] = [];
  readonly server: Server;

  constructor(slots: number, serviceMs: number) {
    this.slots = slots;
    this.serviceMs = serviceMs;
    this.server = createServer((req, res) => {
      req.resume();
      this.run(() => res.end('ok'));
    });
  }

  private run(done: () => void): void {
    if (this.busy >= this.slots) {
      this.waiting.push(() => this.run(done));
      return;
    }
    this.busy++;
    setTimeout(() => {
      this.busy--;
      done();
      while (this.busy < this.slots && this.waiting.length > 0) this.waiting.shift()!();
    }, this.serviceMs);
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** Closed-loop clients: each sends its next request as soon as the last one is answered. */
function load(url: string, clients: number, headers: Record<string, string> = {}) {
  const agent = new Agent({ connections: clients, pipelining: 0 });
  const counts = { ok: 0, refused: 0, other: 0, retryAfter: new Set<string>(), codes: new Set<string>() };
  let running = true;
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      try {
        const res = await fetch(url, { dispatcher: agent, headers });
        const body = await res.text();
        if (res.status === 200) counts.ok++;
        else if (res.status === 503) {
          counts.refused++;
          counts.retryAfter.add(res.headers.get('retry-after') ?? '');
          counts.codes.add((JSON.parse(body) as { code: string }).code);
          await sleep(5); // a refused client backs off a little, as Retry-After asks
        } else counts.other++;
      } catch {
        counts.other++;
      }
    }
  });
  return {
    counts,
    async stop() {
      running = false;
      await Promise.all(loops);
      await agent.close();
    },
  };
}

async function metric(sc: RunningSidecar, name: string, labels: string): Promise<number | undefined> {
  const text = await (await fetch(`${sc.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const policy = (rule: string, mode = 'Enforce') => `
apiVersion: sluice.dev/v1alpha1
kind: CircuitBreakerPolicy
metadata: {name: backend, namespace: shop}
spec:
  selector: {}
  mode: ${mode}
  rules:
${rule}`;

let app: SlotApp;
let appHost: string;
let sc: RunningSidecar | undefined;
let stopLoad: (() => Promise<void>)[] = [];

beforeAll(async () => {
  app = new SlotApp(4, 20);
  appHost = await app.listen();
});
afterEach(async () => {
  await Promise.all(stopLoad.map((s) => s()));
  stopLoad = [];
  await sc?.stop(100);
  sc = undefined;
});
afterAll(() => app.close());

describe('adaptive concurrency on a CircuitBreakerPolicy rule (real sockets)', () => {
  it('converges near the app\'s capacity, recovers when the app speeds up, and its refusals never open the circuit', async () => {
    app.slots = 4;
    sc = await startSidecar(policy(`
    - name: app
      trip: {consecutiveFailures: 3}
      adaptiveConcurrency: {algorithm: Gradient, minLimit: 1, maxLimit: 200, initialLimit: 100, sampleWindow: 50ms}
      bulkhead: {maxConcurrentRequests: 500, maxPendingRequests: 8, maxPendingWait: 50ms}
`), { appHttp: appHost });
    const l = load(sc.url, 48);
    stopLoad.push(l.stop);
    const rule = 'rule="shop/backend/app"';
    // The no-load latency is measured (20 ms), then the limit falls from 100 toward the 4 workers.
    await eventually(async () => {
      expect(await metric(sc!, 'sluice_adaptive_concurrency_min_rtt_seconds', rule)).toBeGreaterThanOrEqual(0.015);
      const limit = await metric(sc!, 'sluice_adaptive_concurrency_limit', rule);
      expect(limit).toBeGreaterThanOrEqual(1);
      expect(limit).toBeLessThanOrEqual(16);
    }, { timeoutMs: 30_000, intervalMs: 200 });
    await eventually(() => expect(l.counts.refused).toBeGreaterThan(0), { timeoutMs: 10_000 });
    expect(l.counts.codes).toEqual(new Set(['SLUICE_ERR_CONCURRENCY_LIMITED']));
    expect([...l.counts.retryAfter].every((v) => Number(v) >= 1)).toBe(true);
    const slow = (await metric(sc, 'sluice_adaptive_concurrency_limit', rule))!;
    // Refusals are not the app's failures: the circuit stays closed.
    expect(await metric(sc, 'sluice_circuit_state', rule)).toBe(0);
    expect(await metric(sc, 'sluice_adaptive_refusals_total', `${rule},reason="concurrency_limited"`)).toBeGreaterThan(0);

    app.slots = 32; // the app gets 8× the workers
    await eventually(async () => {
      expect(await metric(sc!, 'sluice_adaptive_concurrency_limit', rule)).toBeGreaterThanOrEqual(Math.max(24, slow * 2));
    }, { timeoutMs: 30_000, intervalMs: 200 });
    expect(l.counts.other).toBe(0);
  }, 90_000);

  it('sheddable calls are refused before critical ones', async () => {
    app.slots = 4;
    sc = await startSidecar(policy(`
    - name: app
      adaptiveConcurrency: {algorithm: Gradient, minLimit: 2, maxLimit: 200, initialLimit: 20, sampleWindow: 50ms}
      bulkhead: {maxConcurrentRequests: 500, maxPendingRequests: 16, maxPendingWait: 100ms}
      priority:
        key: {source: Header, name: x-priority}
        levels: [critical, default, sheddable]
        reserved: 25
`), { appHttp: appHost });
    const critical = load(sc.url, 12, { 'x-priority': 'critical' });
    const sheddable = load(sc.url, 12, { 'x-priority': 'sheddable' });
    stopLoad.push(critical.stop, sheddable.stop);
    await eventually(() => expect(sheddable.counts.refused + sheddable.counts.ok).toBeGreaterThan(400), { timeoutMs: 60_000, intervalMs: 200 });
    const share = (c: typeof critical.counts) => c.ok / Math.max(1, c.ok + c.refused);
    expect(share(critical.counts)).toBeGreaterThan(share(sheddable.counts));
    expect(sheddable.counts.refused).toBeGreaterThan(critical.counts.refused);
    expect(sheddable.counts.codes.has('SLUICE_ERR_PRIORITY_SHED')).toBe(true);
    expect(await metric(sc, 'sluice_adaptive_refusals_total', 'reason="priority_shed",level="sheddable"')).toBeGreaterThan(0);
  }, 90_000);

  it('DryRun refuses nothing and counts what it would have refused', async () => {
    app.slots = 2;
    sc = await startSidecar(policy(`
    - name: app
      adaptiveConcurrency: {algorithm: AIMD, minLimit: 1, maxLimit: 4, initialLimit: 2, latencyThreshold: 30ms}
`, 'DryRun'), { appHttp: appHost });
    const l = load(sc.url, 16);
    stopLoad.push(l.stop);
    await eventually(async () => {
      expect(await metric(sc!, 'sluice_adaptive_refusals_total', 'reason="concurrency_limited",level="",mode="DryRun"')).toBeGreaterThan(20);
    }, { timeoutMs: 30_000, intervalMs: 200 });
    expect(l.counts.refused).toBe(0);
    expect(l.counts.ok).toBeGreaterThan(0);
  }, 60_000);
});
