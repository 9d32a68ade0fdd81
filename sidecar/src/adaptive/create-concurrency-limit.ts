import type { AdaptiveConcurrencyPlan } from '../../../lib/policy/adaptive.ts';
import { AimdLimit } from './aimd-limit.ts';
import type { ConcurrencyLimit } from './concurrency-limit.ts';
import { GradientLimit } from './gradient-limit.ts';

/** The rule's algorithm, apart from the contract both implement (which they import). */
export function createConcurrencyLimit(plan: AdaptiveConcurrencyPlan, now: number, random: () => number = Math.random): ConcurrencyLimit {
  return plan.algorithm === 'AIMD' ? new AimdLimit(plan, now) : new GradientLimit(plan, now, random);
}
