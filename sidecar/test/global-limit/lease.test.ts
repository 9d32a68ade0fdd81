import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../lib/clock.ts';
import { PartitionLease, defaultMaxBatch, lowWater, type LeaseOptions } from '../../src/limit/global/lease.ts';
import { OutageGate } from '../../src/limit/global/outage-gate.ts';

const opts: LeaseOptions = { maxBatch: 100, leaseMs: 100, horizonMs: 100 };
const answer = (granted: number, retryAfterMs = 0) => ({ granted, remaining: 1000, retryAfterMs, resetMs: 500 });

describe('PartitionLease', () => {
  it('spends leased tokens and no more', () => {
    const clock = new ManualClock();
    const lease = new PartitionLease(clock.now());
    expect(lease.take(clock.now())).toBe(false);
    lease.settle(answer(3), clock.now(), clock.now(), opts);
    expect([lease.take(0), lease.take(0), lease.take(0), lease.take(0)]).toEqual([true, true, true, false]);
  });

  it('voids unused tokens leaseMs after the call that leased them was sent', () => {
    const clock = new ManualClock(1_000);
    const lease = new PartitionLease(clock.now());
    const sentAt = clock.now();
    clock.advance(30); // the round trip
    lease.settle(answer(10), sentAt, clock.now(), opts);
    clock.advance(69);
    expect(lease.take(clock.now())).toBe(true);
    clock.advance(1); // sentAt + leaseMs
    expect(lease.take(clock.now())).toBe(false);
    expect(lease.tokens).toBe(0);
  });

  it('sizes batches to recent demand, between 1 and maxBatch, and asks for at least half', () => {
    const clock = new ManualClock();
    const quiet = new PartitionLease(clock.now());
    quiet.take(clock.now());
    clock.advance(1_000);
    expect(quiet.nextBatch(clock.now(), opts)).toEqual({ want: 1, min: 1 });

    const busy = new PartitionLease(clock.now());
    for (let i = 0; i < 50; i++) busy.take(clock.now()); // 50 in 100 ms → 50 per horizon
    clock.advance(100);
    expect(busy.nextBatch(clock.now(), opts)).toEqual({ want: 50, min: 25 });

    const flood = new PartitionLease(clock.now());
    for (let i = 0; i < 10_000; i++) flood.take(clock.now());
    clock.advance(10);
    expect(flood.nextBatch(clock.now(), opts).want).toBe(100);
  });

  it('holds fewer than maxBatch + lowWater tokens: the per-sidecar over-admission bound', () => {
    const clock = new ManualClock();
    const lease = new PartitionLease(clock.now());
    lease.settle(answer(opts.maxBatch), clock.now(), clock.now(), opts);
    while (!lease.wantsRefill(clock.now(), opts)) expect(lease.take(clock.now())).toBe(true);
    lease.settle(answer(opts.maxBatch), clock.now(), clock.now(), opts);
    expect(lease.tokens).toBeLessThan(opts.maxBatch + lowWater(opts));
  });

  it('remembers a denial until Redis said a batch would be there', () => {
    const clock = new ManualClock();
    const lease = new PartitionLease(clock.now());
    lease.settle(answer(0, 40), clock.now(), clock.now(), opts);
    expect(lease.deniedUntil).toBe(40);
    expect(lease.wantsRefill(clock.now(), opts)).toBe(false);
    expect(lease.idle(clock.now())).toBe(false);
    clock.advance(40);
    expect(lease.wantsRefill(clock.now(), opts)).toBe(true);
    expect(lease.idle(clock.now())).toBe(true);
  });

  it('caps batches at 0.5 % of the capacity by default, never below 1', () => {
    expect(defaultMaxBatch(20_000)).toBe(100);
    expect(defaultMaxBatch(50)).toBe(1);
  });
});

describe('OutageGate', () => {
  it('lets one probe through per interval while down, everything once up', () => {
    const clock = new ManualClock();
    const gate = new OutageGate(250);
    expect(gate.allows(clock.now())).toBe(true);
    gate.failed(clock.now());
    expect(gate.allows(clock.now())).toBe(false);
    expect(gate.retryAfterMs(clock.now())).toBe(250);
    clock.advance(250);
    expect(gate.allows(clock.now())).toBe(true);
    expect(gate.allows(clock.now())).toBe(false);
    gate.succeeded();
    expect(gate.allows(clock.now())).toBe(true);
    expect(gate.allows(clock.now())).toBe(true);
  });

  it('refuses a non-positive probe interval', () => {
    expect(() => new OutageGate(0)).toThrow(RangeError);
  });
});
