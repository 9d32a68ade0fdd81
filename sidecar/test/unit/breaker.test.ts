import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../lib/clock.ts';
import { Bulkhead } from '../../src/breaker/bulkhead.ts';
import { ADMIT, ADMIT_PROBE, CircuitBreaker, REJECT, type BreakerOptions, type StateChange } from '../../src/breaker/circuit-breaker.ts';

const base: BreakerOptions = {
  trip: { consecutiveFailures: undefined, failureRatePercent: undefined, slowCallMs: undefined, slowCallRatePercent: undefined, minimumRequests: 10, windowMs: 10_000 },
  openMs: 1_000,
  maxOpenMs: 4_000,
  maxProbes: 2,
  successesToClose: 2,
};

function breaker(trip: Partial<BreakerOptions['trip']>, over: Partial<BreakerOptions> = {}) {
  const changes: StateChange[] = [];
  const b = new CircuitBreaker({ ...base, ...over, trip: { ...base.trip, ...trip } }, (c) => changes.push(c));
  return { b, changes };
}

function call(b: CircuitBreaker, now: number, failure: boolean, durationMs = 1) {
  const a = b.tryAcquire(now);
  if (a !== REJECT) b.onResult(now, a, failure, durationMs);
  return a;
}

describe('CircuitBreaker trip conditions', () => {
  it('opens after consecutive failures; a success resets the count', () => {
    const { b, changes } = breaker({ consecutiveFailures: 3 });
    call(b, 0, true);
    call(b, 0, true);
    call(b, 0, false);
    call(b, 0, true);
    call(b, 0, true);
    expect(b.stateName(0)).toBe('closed');
    call(b, 0, true);
    expect(b.stateName(0)).toBe('open');
    expect(changes).toEqual([{ from: 'closed', to: 'open', reason: 'ConsecutiveFailures', openMs: 1000 }]);
    expect(b.tryAcquire(10)).toBe(REJECT);
    expect(b.retryAfterMs(10)).toBe(990);
  });

  it('opens on the failure rate only once minimumRequests calls were seen', () => {
    const { b, changes } = breaker({ failureRatePercent: 50, minimumRequests: 10 });
    for (let i = 0; i < 4; i++) call(b, i, true);
    for (let i = 0; i < 4; i++) call(b, i, false);
    expect(b.stateName(10)).toBe('closed'); // 50 % but only 8 calls
    call(b, 10, false);
    call(b, 10, true); // 5/10 = 50 %
    expect(b.stateName(10)).toBe('open');
    expect(changes[0]?.reason).toBe('FailureRate');
  });

  it('opens on the slow-call rate', () => {
    const { b, changes } = breaker({ slowCallMs: 500, slowCallRatePercent: 80, minimumRequests: 5 });
    for (let i = 0; i < 4; i++) call(b, i, false, 600);
    call(b, 5, false, 10); // 4/5 = 80 % slow
    expect(b.stateName(5)).toBe('open');
    expect(changes[0]?.reason).toBe('SlowCallRate');
  });

  it('forgets outcomes that left the rolling window', () => {
    const { b } = breaker({ failureRatePercent: 50, minimumRequests: 4, windowMs: 1_000 });
    for (let i = 0; i < 3; i++) call(b, 0, true);
    for (let i = 0; i < 4; i++) call(b, 2_000, false);
    expect(b.stateName(2_000)).toBe('closed');
  });
});

describe('CircuitBreaker half-open', () => {
  it('admits at most maxProbes concurrent probes and closes after successesToClose', () => {
    const clock = new ManualClock();
    const { b, changes } = breaker({ consecutiveFailures: 1 });
    call(b, clock.now(), true);
    clock.advance(1_000);
    const admissions = Array.from({ length: 100 }, () => b.tryAcquire(clock.now()));
    expect(admissions.filter((a) => a === ADMIT_PROBE)).toHaveLength(2);
    expect(admissions.filter((a) => a === REJECT)).toHaveLength(98);
    b.onResult(clock.now(), ADMIT_PROBE, false, 1);
    expect(b.stateName(clock.now())).toBe('half-open');
    b.onResult(clock.now(), ADMIT_PROBE, false, 1);
    expect(b.stateName(clock.now())).toBe('closed');
    expect(changes.map((c) => c.to)).toEqual(['open', 'half-open', 'closed']);
    expect(b.tryAcquire(clock.now())).toBe(ADMIT);
  });

  it('reopens on a failed probe with the open time doubled up to maxOpenDuration, and resets after closing', () => {
    const clock = new ManualClock();
    const { b, changes } = breaker({ consecutiveFailures: 1 }, { maxProbes: 1, successesToClose: 1 });
    call(b, clock.now(), true);
    for (const expected of [2_000, 4_000, 4_000]) {
      clock.advance(changes.at(-1)!.openMs!);
      expect(call(b, clock.now(), true)).toBe(ADMIT_PROBE);
      expect(changes.at(-1)).toMatchObject({ to: 'open', reason: 'ProbeFailed', openMs: expected });
    }
    clock.advance(4_000);
    expect(call(b, clock.now(), false)).toBe(ADMIT_PROBE);
    expect(b.stateName(clock.now())).toBe('closed');
    call(b, clock.now(), true);
    expect(changes.at(-1)).toMatchObject({ to: 'open', openMs: 1_000 });
  });

  it('a cancelled probe frees its slot without judging', () => {
    const { b } = breaker({ consecutiveFailures: 1 }, { maxProbes: 1 });
    call(b, 0, true);
    expect(b.tryAcquire(1_000)).toBe(ADMIT_PROBE);
    expect(b.tryAcquire(1_000)).toBe(REJECT);
    b.onCancel(ADMIT_PROBE);
    expect(b.tryAcquire(1_000)).toBe(ADMIT_PROBE);
  });

  it('validates its thresholds', () => {
    expect(() => breaker({}, { maxProbes: 0 })).toThrow(RangeError);
    expect(() => breaker({}, { successesToClose: 0 })).toThrow(RangeError);
    expect(() => breaker({ minimumRequests: 0 })).toThrow(RangeError);
  });
});

describe('Bulkhead', () => {
  it('caps concurrency, queues a bounded number for a bounded time, and hands slots over in order', async () => {
    const bh = new Bulkhead({ maxConcurrent: 2, maxPending: 1, maxPendingWaitMs: 5_000 });
    expect(bh.acquire()).toBe(true);
    expect(bh.acquire()).toBe(true);
    const waiting = bh.acquire();
    expect(waiting).toBeInstanceOf(Promise);
    expect(bh.acquire()).toBe('bulkhead_full'); // queue full
    bh.release();
    await expect(waiting).resolves.toBe(true);
    expect(bh.inFlight).toBe(2);
    bh.release();
    bh.release();
    expect(bh.inFlight).toBe(0);
  });

  it('gives up on a waiter after maxPendingWait', async () => {
    const bh = new Bulkhead({ maxConcurrent: 1, maxPending: 5, maxPendingWaitMs: 20 });
    bh.acquire();
    await expect(bh.acquire()).resolves.toBe('bulkhead_full');
    expect(bh.pending).toBe(0);
  });
});
