import type { RateLimitRule } from '../../../../lib/policy/plan.ts';
import { GlobalLimiter, type GlobalLimiterDeps } from './global-limiter.ts';

export { GlobalLimiter, type GlobalLimiterDeps, type GlobalMode } from './global-limiter.ts';
export { rateLimitBucketKey as bucketKey, rateLimitPresenceKey as presenceKey } from '../../../../lib/redis/key-layout.ts';

/** The limiter for a `scope: Global` rule; `close()` stops its heartbeat. */
export function createGlobalLimiter(rule: RateLimitRule, deps: GlobalLimiterDeps): GlobalLimiter {
  return new GlobalLimiter(rule, deps);
}
