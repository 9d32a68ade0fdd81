import type { PriorityPlan } from '../../../lib/policy/adaptive.ts';

/**
 * Priority shedding, as pure arithmetic on a compiled PriorityPlan (Google SRE's criticality).
 * Levels are numbered from 0, the highest. Level i is admitted while the share of the limit in use
 * stays within its ceiling, 1 − i × reserved: with levels [critical, default, sheddable] and
 * reserved 10, sheddable is refused from 80 % use, default from 90 %, and the last 10 % is
 * critical's alone. As load rises, the lowest level is therefore refused first.
 */
export class PriorityGate {
  readonly plan: PriorityPlan;
  private readonly index: ReadonlyMap<string, number>;

  constructor(plan: PriorityPlan) {
    this.plan = plan;
    this.index = new Map(plan.levels.map((l, i) => [l, i]));
  }

  /** The level of a request from its header / metadata value; unknown or missing → the default. */
  levelOf(value: string | undefined): number {
    if (value === undefined) return this.plan.defaultLevel;
    return this.index.get(value.trim().toLowerCase()) ?? this.plan.defaultLevel;
  }

  /**
   * Of a concurrency limit, the calls a level may have in flight at once. The highest level may
   * always use the whole limit; a lower level may get none when the limit is small.
   */
  concurrencyCap(limit: number, level: number): number {
    if (level === 0) return limit;
    return Math.floor(limit * (this.plan.ceilings[level] as number) + 1e-9);
  }

  /** Of a rate limit's quota, how much a request of `level` must leave unused for the levels above. */
  reserve(quota: number, level: number): number {
    return quota * (1 - (this.plan.ceilings[level] as number));
  }
}
