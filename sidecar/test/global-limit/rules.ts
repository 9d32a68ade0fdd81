import { compilePlan } from '../../../lib/policy/index.ts';
import type { RateLimitRule } from '../../../lib/policy/plan.ts';

/** A compiled `scope: Global` rule, as the policy engine would hand it to createGlobalLimiter. */
export function globalRule(name: string, limit: Record<string, unknown>, failureMode: 'Open' | 'Closed' = 'Open'): RateLimitRule {
  const plan = compilePlan([{
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'RateLimitPolicy',
    metadata: { name: 'api', namespace: 'shop' },
    spec: { selector: { matchLabels: { app: 'x' } }, rules: [{ name, limit, scope: 'Global', failureMode }] },
  }]);
  return plan.rateLimits[0] as RateLimitRule;
}
