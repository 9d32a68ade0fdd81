import type { FailureMode } from '../../../../lib/policy/types.ts';
import type { LimitSpec } from '../../../../lib/policy/plan.ts';
import type { Decision, Limiter } from '../limiter.ts';
import { createLocalLimiter } from '../local.ts';

/**
 * What a Global rule answers while Redis cannot: `Open` counts locally against this sidecar's
 * share of the limit (the limit divided by the live sidecars sharing the rule, the whole limit
 * when that count is unknown); `Closed` rejects. The local limiter is rebuilt when the share
 * changes — its counts restart, which errs on the side of admitting during an outage.
 */
export class FailureModeFallback {
  readonly mode: FailureMode;
  private readonly limit: LimitSpec;
  private local: Limiter | undefined;
  private localPeers = 0;

  constructor(mode: FailureMode, limit: LimitSpec) {
    this.mode = mode;
    this.limit = limit;
  }

  decide(key: string, now: number, peers: number | undefined, retryAfterMs: number): Decision {
    if (this.mode === 'Closed') {
      return { allowed: false, limit: this.limit.burst, remaining: 0, resetMs: retryAfterMs, retryAfterMs: Math.max(1, retryAfterMs) };
    }
    const n = peers ?? 1;
    if (this.local === undefined || n !== this.localPeers) {
      this.local = createLocalLimiter(this.limit, { share: 1 / n });
      this.localPeers = n;
    }
    // Local limiters answer synchronously (see limiter.ts).
    return this.local.consume(key, now) as Decision;
  }
}
