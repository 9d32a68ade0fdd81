import type { Clock } from '../../../lib/clock.ts';
import type { Logger } from '../../../lib/log.ts';
import type { BreakerRule } from '../../../lib/policy/plan.ts';
import type { CircuitTransition } from '../../../lib/proto/discovery.ts';
import { TokenBucket } from '../limit/token-bucket.ts';
import type { StateChange } from './circuit-breaker.ts';

export interface CircuitTransitionReporterOptions {
  logger: Logger;
  clock: Clock;
  /** Sends a transition to the operator; false when it could not (no stream): then it counts as dropped. */
  send?: (t: CircuitTransition) => boolean;
  /** At most this many transitions a second on the stream, after a burst of `burst` (default 5/s, 20). */
  perSecond?: number;
  burst?: number;
}

/**
 * Tells people that a circuit changed state: one structured log line per transition, always, and
 * the same transition on the discovery stream, from which the operator records a Kubernetes Event
 * on the CircuitBreakerPolicy (the sidecar has no Kubernetes client). A flapping circuit (a short
 * openDuration and a failing app) can change state on every request, so the stream is
 * rate-limited here; what is held back is counted and the next transition sent says how many.
 * The metrics (sluice_circuit_state, sluice_circuit_transitions_total) stay the exact record.
 */
export class CircuitTransitionReporter {
  private readonly opts: CircuitTransitionReporterOptions;
  private readonly bucket: TokenBucket;
  private dropped = 0;
  send: ((t: CircuitTransition) => boolean) | undefined;

  constructor(opts: CircuitTransitionReporterOptions) {
    this.opts = opts;
    this.send = opts.send;
    this.bucket = new TokenBucket({ requests: opts.perSecond ?? 5, perMs: 1_000, burst: opts.burst ?? 20, maxKeys: 2 }); // one key is used; 2 is the smallest keyed store
  }

  /** Transitions not sent since the last one that was. */
  get pendingDropped(): number {
    return this.dropped;
  }

  record(rule: BreakerRule, change: StateChange): void {
    const [policyNamespace = '', policyName = ''] = rule.policy.split('/');
    const fields = {
      rule: rule.id, from: change.from, to: change.to, reason: change.reason,
      ...(change.openMs !== undefined ? { openMs: change.openMs } : {}),
    };
    // Opening is what an operator wants to notice; probing and closing are the recovery.
    if (change.to === 'open') this.opts.logger.warn('circuit opened', fields);
    else this.opts.logger.info(change.to === 'closed' ? 'circuit closed' : 'circuit half-open', fields);

    const send = this.send;
    if (!send) return;
    if (!this.bucket.consume('', this.opts.clock.now()).allowed) {
      this.dropped++;
      return;
    }
    let sent: boolean;
    try {
      sent = send({
        policyNamespace, policyName, rule: rule.name,
        from: change.from, to: change.to, reason: change.reason,
        timeUnixMs: this.opts.clock.wallNow(), openMs: change.openMs ?? 0, dropped: this.dropped,
      });
    } catch {
      // Called from the breaker on the request path: a stream that broke mid-write loses this one.
      sent = false;
    }
    if (sent) this.dropped = 0;
    else this.dropped++;
  }
}
