/** The outbound path's pure decisions, driven with fake time and pinned randomness. */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../lib/clock.ts';
import { compilePlan } from '../../../lib/policy/compile.ts';
import { Endpoint, recordLatency } from '../../src/outbound/endpoint.ts';
import { LeastRequestPicker, RoundRobinPicker, candidates, slowStartFactor } from '../../src/outbound/load-balancer.ts';
import { OutlierDetector } from '../../src/outbound/outlier-detector.ts';
import { RetryBudget } from '../../src/outbound/retry-budget.ts';
import { decideRetry, type RetryContext, type TryOutcome } from '../../src/outbound/retry-decision.ts';

const eps = (n: number, at = 0) => Array.from({ length: n }, (_, i) => new Endpoint(`10.0.0.${i + 1}:80`, at));
/** A deterministic stand-in for Math.random: a fixed sequence, repeated. */
const sequence = (...xs: number[]) => {
  let i = 0;
  return () => xs[i++ % xs.length] as number;
};

describe('LeastRequest (power of two choices)', () => {
  it('prefers the endpoint with fewer requests in flight', () => {
    const [a, b] = eps(2);
    a!.outstanding = 3;
    const p = new LeastRequestPicker(0, sequence(0, 0));
    expect(p.pick([a!, b!], 0)).toBe(b);
  });

  it('weights by latency: a 10× slower endpoint loses until the fast one has 10× the queue', () => {
    const [fast, slow] = eps(2);
    recordLatency(fast!, 10);
    recordLatency(slow!, 100);
    const p = new LeastRequestPicker(0, sequence(0.1, 0.9));
    fast!.outstanding = 8;
    expect(p.pick([fast!, slow!], 0)).toBe(fast); // 9 × 10 < 1 × 100
    fast!.outstanding = 10;
    expect(p.pick([fast!, slow!], 0)).toBe(slow); // 11 × 10 > 100
  });

  it('spreads evenly over equal endpoints', () => {
    const all = eps(3);
    const p = new LeastRequestPicker(0);
    const counts = new Map<Endpoint, number>();
    for (let i = 0; i < 3000; i++) {
      const e = p.pick(all, 0)!;
      counts.set(e, (counts.get(e) ?? 0) + 1);
    }
    for (const e of all) expect(counts.get(e)).toBeGreaterThan(800);
  });

  it('avoids ejected and already-tried endpoints, and falls back to them when nothing else is left', () => {
    const [a, b, c] = eps(3);
    b!.ejectedUntil = 100;
    expect(candidates([a!, b!, c!], 50, new Set([a!]))).toEqual([c]);
    expect(candidates([a!, b!, c!], 50, new Set([a!, c!]))).toEqual([a, c]);
    expect(candidates([a!, b!, c!], 150)).toEqual([a, b, c]);
    b!.ejectedUntil = 100;
    a!.ejectedUntil = 100;
    c!.ejectedUntil = 100;
    expect(candidates([a!, b!, c!], 50)).toEqual([a, b, c]); // all ejected: panic, use all
    expect(new LeastRequestPicker(0).pick([], 0)).toBeUndefined();
  });

  it('ramps a new endpoint with slow start', () => {
    const e = new Endpoint('x:1', 1000);
    expect(slowStartFactor(e, 1000, 10_000)).toBe(0.1);
    expect(slowStartFactor(e, 6000, 10_000)).toBe(0.5);
    expect(slowStartFactor(e, 20_000, 10_000)).toBe(1);
    const old = new Endpoint('y:1', -100_000);
    recordLatency(e, 10);
    recordLatency(old, 10);
    const p = new LeastRequestPicker(10_000, sequence(0, 0.9));
    old.outstanding = 3; // cost 40 vs new endpoint's 10 / 0.2 = 50
    expect(p.pick([e, old], 2000)).toBe(old);
  });
});

describe('RoundRobin', () => {
  it('takes each endpoint in turn, skipping ejected ones', () => {
    const all = eps(3);
    all[1]!.ejectedUntil = 10;
    const p = new RoundRobinPicker(0);
    expect([p.pick(all, 0), p.pick(all, 0), p.pick(all, 0)].map((e) => e!.address)).toEqual(['10.0.0.1:80', '10.0.0.3:80', '10.0.0.1:80']);
  });
});

describe('RetryBudget', () => {
  it('allows minPerSecond × window plus percent of calls, over a sliding window', () => {
    const clock = new ManualClock();
    const b = new RetryBudget({ percent: 20, minPerSecond: 0, windowMs: 10_000 }, clock);
    for (let i = 0; i < 100; i++) b.recordCall();
    let granted = 0;
    for (let i = 0; i < 100; i++) if (b.tryAcquire()) granted++;
    expect(granted).toBe(20);
    clock.advance(11_000); // the window slid past every call and retry
    expect(b.tryAcquire()).toBe(false);
    b.recordCall();
    expect(b.allowed()).toBeCloseTo(0.2);
  });

  it('lets a quiet client retry minPerSecond', () => {
    const clock = new ManualClock();
    const b = new RetryBudget({ percent: 0, minPerSecond: 2, windowMs: 1_000 }, clock);
    expect([b.tryAcquire(), b.tryAcquire(), b.tryAcquire()]).toEqual([true, true, false]);
    clock.advance(1_100);
    expect(b.tryAcquire()).toBe(true);
  });

  it('refuses nonsense with a RangeError', () => {
    expect(() => new RetryBudget({ percent: 150, minPerSecond: 0, windowMs: 1000 }, new ManualClock())).toThrow(RangeError);
  });
});

describe('OutlierDetector', () => {
  const spec = { consecutiveFailures: 3, intervalMs: 10_000, baseEjectionMs: 30_000, maxEjectionMs: 100_000, maxEjectionPercent: 50 };

  it('ejects after consecutive failures, for longer each time, and forgives over intervals', () => {
    const d = new OutlierDetector(spec);
    const all = eps(4);
    const e = all[0]!;
    expect([d.failure(e, all, 0), d.failure(e, all, 0)]).toEqual([false, false]);
    d.success(e, 0); // a success resets the run
    expect([d.failure(e, all, 0), d.failure(e, all, 0), d.failure(e, all, 0)]).toEqual([false, false, true]);
    expect(e.ejectedUntil).toBe(30_000);
    for (let i = 0; i < 3; i++) d.failure(e, all, 30_000);
    expect(e.ejectedUntil).toBe(90_000); // second ejection: 2 × base
    for (let i = 0; i < 3; i++) d.failure(e, all, 90_000);
    expect(e.ejectedUntil).toBe(180_000); // third: 3 × base = 90 s, under the 100 s cap
    // Long quiet: each interval forgives one step, so the next ejection is short again.
    d.success(e, 500_000);
    expect(e.ejections).toBe(0);
    for (let i = 0; i < 3; i++) d.failure(e, all, 500_000);
    expect(e.ejectedUntil).toBe(530_000);
  });

  it('never ejects more than maxEjectionPercent of the endpoints', () => {
    const d = new OutlierDetector(spec);
    const all = eps(3);
    for (let i = 0; i < 3; i++) d.failure(all[0]!, all, 0);
    for (let i = 0; i < 3; i++) d.failure(all[1]!, all, 0);
    expect(all.map((e) => e.isEjected(1))).toEqual([true, false, false]);
  });
});

describe('decideRetry (gRFC A6)', () => {
  const plan = compilePlan([{
    apiVersion: 'sluice.dev/v1alpha1', kind: 'Upstream', metadata: { name: 'u' },
    spec: { selector: {}, endpoints: ['a:1'], protocol: 'grpc', listen: '127.0.0.1:1', retry: { attempts: 3, backoff: { initial: '100ms', max: '300ms' } } },
  }]).upstreams[0]!;
  const ctx = (over: Partial<RetryContext> = {}): RetryContext => ({ tries: 1, replayable: true, idempotent: true, timeLeftMs: 10_000, ...over });
  const UNAVAILABLE: TryOutcome = { kind: 'grpc-status', code: 14 };

  const table: [string, TryOutcome, Partial<RetryContext>, unknown][] = [
    ['a retryable code', UNAVAILABLE, {}, { retry: true, delayMs: 50 }],
    ['a code not named', { kind: 'grpc-status', code: 13 }, {}, { retry: false, reason: 'not-retryable' }],
    ['out of tries', UNAVAILABLE, { tries: 3 }, { retry: false, reason: 'attempts' }],
    ['a request past the replay buffer', UNAVAILABLE, { replayable: false }, { retry: false, reason: 'not-replayable' }],
    ['pushback replaces backoff', { kind: 'grpc-status', code: 14, pushback: '700' }, {}, { retry: true, delayMs: 700 }],
    ['negative pushback stops retries', { kind: 'grpc-status', code: 14, pushback: '-1' }, {}, { retry: false, reason: 'pushback' }],
    ['malformed pushback stops retries', { kind: 'grpc-status', code: 14, pushback: 'soon' }, {}, { retry: false, reason: 'pushback' }],
    ['backoff past the deadline', UNAVAILABLE, { timeLeftMs: 10 }, { retry: false, reason: 'no-time' }],
    ['backoff doubles, capped', UNAVAILABLE, { tries: 2 }, { retry: true, delayMs: 100 }],
    ['HTTP POST on a 503 is not repeated', { kind: 'http-status', status: 503 }, { idempotent: false }, { retry: false, reason: 'not-retryable' }],
    ['HTTP GET on a 503 is', { kind: 'http-status', status: 503 }, {}, { retry: true, delayMs: 50 }],
    ['HTTP POST that never connected is', { kind: 'connect-failure' }, { idempotent: false }, { retry: true, delayMs: 50 }],
    ['a reset', { kind: 'reset' }, {}, { retry: true, delayMs: 50 }],
    ['a per-try timeout', { kind: 'try-timeout' }, {}, { retry: true, delayMs: 50 }],
  ];
  for (const [title, outcome, over, expected] of table) {
    it(title, () => expect(decideRetry(plan.retry, outcome, ctx(over), () => 0.5)).toEqual(expected));
  }
});
