import { describe, expect, it } from 'vitest';
import { decideReplicas, recommendReplicas, type AutoscaleSpec, type Recommendation } from '../../src/task-queue/autoscale-decision.ts';

const spec: AutoscaleSpec = { minReplicas: 1, maxReplicas: 10, targetLagPerReplica: 100, stabilizationWindowMs: 60_000 };

describe('recommendReplicas', () => {
  it.each([
    [0, 1, 'an empty queue keeps minReplicas'],
    [1, 1, 'one task needs one replica'],
    [100, 1, 'exactly the target per replica'],
    [101, 2, 'one over rounds up'],
    [950, 10, 'just under the max'],
    [1_000_000, 10, 'clamped to maxReplicas'],
    [-5, 1, 'a negative backlog (never expected) counts as none'],
  ])('backlog %i → %i (%s)', (backlog, expected) => {
    expect(recommendReplicas(backlog, spec)).toBe(expected);
  });

  it('minReplicas 0 lets an idle queue scale to zero', () => {
    expect(recommendReplicas(0, { ...spec, minReplicas: 0 })).toBe(0);
  });
});

describe('decideReplicas', () => {
  const h = (...pairs: [number, number][]): Recommendation[] => pairs.map(([at, replicas]) => ({ at, replicas }));
  it.each<{ name: string; backlog: number; current: number; history: Recommendation[]; now: number; desired: number; direction: string }>([
    { name: 'scales up at once, whatever the history', backlog: 450, current: 1, history: h([0, 1], [50_000, 1]), now: 60_000, desired: 5, direction: 'up' },
    { name: 'stays when the recommendation equals the current count', backlog: 300, current: 3, history: [], now: 0, desired: 3, direction: 'none' },
    { name: 'holds a scale-down while a higher recommendation is within the window', backlog: 0, current: 5, history: h([10_000, 5]), now: 60_000, desired: 5, direction: 'none' },
    { name: 'scales down once the high recommendation left the window', backlog: 0, current: 5, history: h([10_000, 5]), now: 70_001, desired: 1, direction: 'down' },
    { name: 'scales down only to the highest recommendation still in the window', backlog: 0, current: 5, history: h([5_000, 5], [30_000, 3], [50_000, 2]), now: 66_000, desired: 3, direction: 'down' },
    { name: 'a recommendation exactly at the window edge has left it', backlog: 0, current: 4, history: h([0, 4]), now: 60_000, desired: 1, direction: 'down' },
    { name: 'a current count above a lowered maxReplicas comes down to the max', backlog: 5_000, current: 15, history: h([1_000, 15]), now: 2_000, desired: 10, direction: 'down' },
    { name: 'a current count below minReplicas comes up to the min', backlog: 0, current: 0, history: [], now: 0, desired: 1, direction: 'up' },
    { name: 'future-dated history (clock skew between restarts) is ignored', backlog: 0, current: 3, history: h([90_000, 9]), now: 80_000, desired: 1, direction: 'down' },
  ])('$name', ({ backlog, current, history, now, desired, direction }) => {
    const d = decideReplicas({ backlog, currentReplicas: current, spec, history, now });
    expect({ desired: d.desiredReplicas, direction: d.direction }).toEqual({ desired, direction });
  });

  it('keeps only the recommendations within the window, plus this round', () => {
    const d = decideReplicas({ backlog: 250, currentReplicas: 3, spec, history: h([0, 7], [30_000, 4]), now: 70_000 });
    expect(d.history).toEqual(h([30_000, 4], [70_000, 3]));
  });

  it('does not flap: a backlog that comes and goes within the window holds the replicas', () => {
    let history: readonly Recommendation[] = [];
    let current = 1;
    const seen: number[] = [];
    // Every 10 s the backlog alternates between 800 and 0, for two minutes.
    for (let t = 0; t <= 120_000; t += 10_000) {
      const d = decideReplicas({ backlog: (t / 10_000) % 2 === 0 ? 800 : 0, currentReplicas: current, spec, history, now: t });
      history = d.history;
      current = d.desiredReplicas;
      seen.push(current);
    }
    expect(seen).toEqual(Array(13).fill(8));
  });

  it('refuses an impossible spec with a RangeError', () => {
    expect(() => decideReplicas({ backlog: 1, currentReplicas: 1, spec: { ...spec, targetLagPerReplica: 0 }, history: [], now: 0 })).toThrow(RangeError);
    expect(() => decideReplicas({ backlog: 1, currentReplicas: 1, spec: { ...spec, minReplicas: 11 }, history: [], now: 0 })).toThrow(RangeError);
  });
});
