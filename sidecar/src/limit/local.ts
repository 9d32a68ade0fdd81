import type { LimitSpec } from '../../../lib/policy/plan.ts';
import type { Limiter } from './limiter.ts';
import { SlidingWindow } from './sliding-window.ts';
import { TokenBucket } from './token-bucket.ts';

/**
 * The Local limiter for a rule's limit. `share` scales it (0 < share ≤ 1): a Global rule that
 * falls back to local counting while Redis is away enforces its share of the global limit.
 */
export function createLocalLimiter(limit: LimitSpec, opts: { share?: number; maxKeys?: number } = {}): Limiter {
  const share = opts.share ?? 1;
  const requests = Math.max(1, Math.floor(limit.requests * share));
  const warmUp = limit.warmUp;
  if (limit.algorithm === 'SlidingWindow') return new SlidingWindow({ requests, perMs: limit.perMs, maxKeys: opts.maxKeys, warmUp });
  return new TokenBucket({ requests, perMs: limit.perMs, burst: Math.max(1, Math.floor(limit.burst * share)), maxKeys: opts.maxKeys, warmUp });
}
