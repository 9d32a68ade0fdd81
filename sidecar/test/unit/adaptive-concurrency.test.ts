import { describe, expect, it } from 'vitest';
import { compileAdaptiveConcurrency, compilePriority } from '../../../lib/policy/adaptive.ts';
import { AimdLimit } from '../../src/adaptive/aimd-limit.ts';
import { GradientLimit } from '../../src/adaptive/gradient-limit.ts';
import { PriorityGate } from '../../src/adaptive/priority-gate.ts';
import { Bulkhead } from '../../src/breaker/bulkhead.ts';
import type { ConcurrencyLimit } from '../../src/adaptive/concurrency-limit.ts';

/** An app with `slots` workers of `serviceMs` each; calls beyond the slots queue inside it. */
const latencyAt = (concurrency: number, slots: number, serviceMs: number) => serviceMs * Math.max(1, concurrency / slots);

/**
 * Drives a limit with saturating demand: every ms, the calls in flight are the limit, and as many
 * finish as the app's throughput allows, each taking the app's latency at that concurrency.
 */
function drive(limit: ConcurrencyLimit, from: number, to: number, app: { slots: number; serviceMs: number }): { limits: number[] } {
  const limits: number[] = [];
  let carry = 0;
  for (let now = from; now < to; now++) {
    const inFlight = limit.limit;
    const rtt = latencyAt(inFlight, app.slots, app.serviceMs);
    carry += inFlight / rtt; // Little's law: completions per ms
    while (carry >= 1) {
      carry -= 1;
      limit.onSample(now, rtt, now - rtt, false);
    }
    limits.push(limit.limit);
  }
  return { limits };
}

const gradientPlan = compileAdaptiveConcurrency({ algorithm: 'Gradient', minLimit: 1, maxLimit: 200, initialLimit: 50, sampleWindow: '100ms', minRttInterval: '30s' })!;

describe('GradientLimit', () => {
  it('measures the no-load latency at minLimit first, then converges near the app\'s capacity', () => {
    const g = new GradientLimit(gradientPlan, 0, () => 0.5);
    expect(g.limit).toBe(1); // measuring
    const { limits } = drive(g, 0, 10_000, { slots: 8, serviceMs: 10 });
    expect(g.minRttMs).toBe(10);
    const settled = limits.slice(-3000);
    // At 8 slots × 10 ms the app serves 8 at once; the limit settles a little above (headroom)
    // and far below the initial 50, so latency stays under 2.5× the no-load latency.
    expect(Math.min(...settled)).toBeGreaterThanOrEqual(8);
    expect(Math.max(...settled)).toBeLessThanOrEqual(20);
    expect(latencyAt(Math.max(...settled), 8, 10)).toBeLessThan(25);
  });

  it('follows the app down when its capacity halves and back up when it recovers', () => {
    const g = new GradientLimit(gradientPlan, 0, () => 0.5);
    drive(g, 0, 5_000, { slots: 16, serviceMs: 10 });
    const before = g.limit;
    expect(before).toBeGreaterThanOrEqual(16);
    drive(g, 5_000, 10_000, { slots: 4, serviceMs: 10 });
    const slowed = g.limit;
    expect(slowed).toBeLessThan(before / 2);
    expect(slowed).toBeGreaterThanOrEqual(4);
    drive(g, 10_000, 15_000, { slots: 16, serviceMs: 10 });
    expect(g.limit).toBeGreaterThanOrEqual(16);
  });

  it('does not drift under sustained overload: minRTT is re-measured at minLimit, not averaged from queued calls', () => {
    const g = new GradientLimit(gradientPlan, 0, () => 0.5);
    drive(g, 0, 70_000, { slots: 8, serviceMs: 10 }); // two re-measures (every 30 s ± 10 %)
    expect(g.minRttMs).toBe(10);
    expect(g.limit).toBeLessThanOrEqual(20);
  });

  it('measures again at once when the app\'s service time itself grows, instead of pinning the limit low', () => {
    const g = new GradientLimit(gradientPlan, 0, () => 0.5);
    drive(g, 0, 4_000, { slots: 4, serviceMs: 20 });
    expect(g.minRttMs).toBe(20);
    drive(g, 4_000, 10_000, { slots: 4, serviceMs: 80 }); // long before minRttInterval (30 s)
    expect(g.minRttMs).toBe(80);
    expect(g.limit).toBeGreaterThanOrEqual(4); // the worker's 4 slots stay busy
  });

  it('ignores calls admitted before a measure started, and caps the limit after an overload answer', () => {
    const g = new GradientLimit(gradientPlan, 1000, () => 0.5);
    g.onSample(1010, 500, 900, false); // admitted before: not a no-load sample
    for (let i = 0; i < gradientPlan.minRttSamples; i++) g.onSample(1011 + i, 10, 1001 + i, false);
    expect(g.minRttMs).toBe(10);
    expect(g.limit).toBe(50);
    g.onSample(1100, 10, 1090, true);
    g.onSample(1200, 10, 1190, true);
    expect(g.limit).toBe(45); // ≤ 90 % of 50, though latency alone would have raised it
  });
});

describe('AimdLimit', () => {
  const plan = compileAdaptiveConcurrency({ algorithm: 'AIMD', minLimit: 2, maxLimit: 40, initialLimit: 10, sampleWindow: '100ms', latencyThreshold: '50ms', backoffPercent: 50 })!;

  it('adds one per healthy window and halves on a slow or overloaded window', () => {
    const a = new AimdLimit(plan, 0);
    for (let t = 0; t <= 300; t += 10) a.onSample(t, 20, t - 20, false);
    expect(a.limit).toBe(13);
    a.onSample(350, 80, 270, false);
    a.onSample(401, 80, 321, false);
    expect(a.limit).toBe(6);
    a.onSample(450, 10, 440, true);
    a.onSample(502, 10, 492, false);
    expect(a.limit).toBe(3);
    for (let t = 600; t <= 1000; t += 101) a.onSample(t, 90, t - 90, false);
    expect(a.limit).toBe(2); // never below minLimit
    expect(a.minRttMs).toBe(10);
  });
});

describe('priority levels', () => {
  const plan = compilePriority({ key: { source: 'Header', name: 'X-Priority' }, levels: ['critical', 'default', 'sheddable'], default: 'default', reserved: 10 })!;
  const gate = new PriorityGate(plan);

  it('resolve unknown and missing values to the default, and give each lower level a smaller share', () => {
    expect(plan.name).toBe('x-priority');
    expect([gate.levelOf('critical'), gate.levelOf(' Sheddable '), gate.levelOf('vip'), gate.levelOf(undefined)]).toEqual([0, 2, 1, 1]);
    expect([gate.concurrencyCap(100, 0), gate.concurrencyCap(100, 1), gate.concurrencyCap(100, 2)]).toEqual([100, 90, 80]);
    expect(gate.reserve(50, 0)).toBe(0);
    expect(gate.reserve(50, 2)).toBeCloseTo(10);
  });

  it('at saturation, refuse sheddable before default before critical, and serve waiters highest first', async () => {
    const bh = new Bulkhead({ maxConcurrent: 10, maxPending: 3, maxPendingWaitMs: 5_000, priority: gate });
    for (let i = 0; i < 8; i++) expect(bh.acquire(1)).toBe(true);
    const shed = bh.acquire(2); // 8 of 10 in use: sheddable's ceiling (80 %) is reached
    expect(shed).toBeInstanceOf(Promise);
    expect(bh.acquire(1)).toBe(true); // default still fits under 90 %
    const waitingDefault = bh.acquire(1);
    expect(bh.acquire(0)).toBe(true); // critical has the last 10 %
    const waitingCritical = bh.acquire(0);
    // The queue (3) is full: one more critical pushes the newest sheddable waiter out.
    const another = bh.acquire(0);
    await expect(shed).resolves.toBe('priority_shed');
    const order: string[] = [];
    void (waitingDefault as Promise<unknown>).then(() => order.push('default'));
    void (waitingCritical as Promise<unknown>).then(() => order.push('critical'));
    void (another as Promise<unknown>).then(() => order.push('critical'));
    bh.release();
    bh.release();
    bh.release();
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual(['critical', 'critical']); // default waits: 10 in use is over its 90 %
    expect(bh.inFlight).toBe(9 + 1 - 3 + 2);
  });

  it('an adaptive limit below the bulkhead is the one enforced and named in the refusal', () => {
    const adaptive = { limit: 2 };
    const bh = new Bulkhead({ maxConcurrent: 10, maxPending: 0, maxPendingWaitMs: 0, adaptive });
    expect([bh.acquire(), bh.acquire(), bh.acquire()]).toEqual([true, true, 'concurrency_limited']);
    adaptive.limit = 20;
    expect(bh.limit).toBe(10);
    for (let i = 0; i < 8; i++) bh.acquire();
    expect(bh.acquire()).toBe('bulkhead_full');
    expect(bh.acquireShadow()).toBe('bulkhead_full');
    expect(bh.inFlight).toBe(11); // a shadow call holds a slot so that release() stays paired
  });
});
