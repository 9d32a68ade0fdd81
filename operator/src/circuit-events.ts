/**
 * Circuit transitions reported by sidecars (PolicyDiscovery CircuitTransition) become Kubernetes
 * Events on the CircuitBreakerPolicy, naming the pod: what `kubectl describe cbp` shows when a
 * circuit opens, probes and closes. The sidecar has no Kubernetes client; this is its voice.
 *
 * A report is believed only as far as it is checkable: the pod is authenticated by its stream,
 * and the policy must be in the pod's namespace, exist, select the pod and have the named rule —
 * so a pod cannot write Events on policies that do not concern it. Events per policy and reason
 * are throttled (EventThrottle); the held-back count rides on the next Event.
 */
import type { Clock } from '../../lib/clock.ts';
import type { Logger } from '../../lib/log.ts';
import { selectorMatches } from '../../lib/policy/selector.ts';
import type { CircuitTransition } from '../../lib/proto/discovery.ts';
import type { EventRecorder } from './event-recorder.ts';
import { EventThrottle } from './event-throttle.ts';
import type { KubeObject } from './kube-client.ts';
import type { OperatorMetrics } from './metrics.ts';

const STATES = new Set(['closed', 'open', 'half-open']);
const EVENT_REASON: Record<string, string> = { open: 'CircuitOpened', 'half-open': 'CircuitHalfOpen', closed: 'CircuitClosed' };

export interface CircuitEventsOptions {
  /** The CircuitBreakerPolicy as the informer holds it ("namespace/name"). */
  policy: (key: string) => KubeObject | undefined;
  events: EventRecorder;
  clock: Clock;
  logger: Logger;
  metrics: OperatorMetrics;
  /** Per policy and reason: this many Events at once, then one per `everyMs` (default 5, 30 s). */
  burst?: number;
  everyMs?: number;
}

export class CircuitEvents {
  private readonly opts: CircuitEventsOptions;
  private readonly throttle: EventThrottle;

  constructor(opts: CircuitEventsOptions) {
    this.opts = opts;
    this.throttle = new EventThrottle({ burst: opts.burst ?? 5, everyMs: opts.everyMs ?? 30_000 });
  }

  /** One transition from the sidecar of `pod` (already authenticated). */
  onTransition(pod: KubeObject, t: CircuitTransition): void {
    const { logger, metrics } = this.opts;
    const podKey = `${pod.metadata.namespace}/${pod.metadata.name}`;
    const why = this.refusal(pod, t);
    if (why) {
      metrics.circuitTransitions.inc({ result: 'refused' });
      logger.debug('circuit transition report ignored', { pod: podKey, policy: `${t.policyNamespace}/${t.policyName}`, rule: t.rule, why });
      return;
    }
    const policy = this.opts.policy(`${t.policyNamespace}/${t.policyName}`) as KubeObject;
    const reason = EVENT_REASON[t.to] as string;
    const verdict = this.throttle.take(`${policy.metadata.uid ?? podKey}/${t.policyNamespace}/${t.policyName}/${reason}`, this.opts.clock.now());
    if (!verdict.allowed) {
      metrics.circuitTransitions.inc({ result: 'throttled' });
      return;
    }
    metrics.circuitTransitions.inc({ result: 'recorded' });
    const dryRun = policy.spec?.mode === 'DryRun' ? ' (DryRun: calls are counted, not rejected)' : '';
    this.opts.events.record(policy, t.to === 'open' ? 'Warning' : 'Normal', reason, `${message(podKey, t, verdict.suppressed)}${dryRun}`);
  }

  private refusal(pod: KubeObject, t: CircuitTransition): string | undefined {
    if (!STATES.has(t.from) || !STATES.has(t.to) || t.from === t.to) return 'unknown state';
    if (!/^[A-Za-z]{1,64}$/.test(t.reason)) return 'malformed reason';
    if (t.policyNamespace !== pod.metadata.namespace) return 'policy outside the pod\'s namespace';
    const policy = this.opts.policy(`${t.policyNamespace}/${t.policyName}`);
    if (!policy) return 'no such CircuitBreakerPolicy';
    if (!selectorMatches(policy.spec?.selector ?? {}, pod.metadata.labels ?? {})) return 'the policy does not select the pod';
    const rules = (policy.spec?.rules ?? []) as { name?: string }[];
    if (!rules.some((r) => r.name === t.rule)) return 'no such rule';
    return undefined;
  }
}

function message(podKey: string, t: CircuitTransition, suppressed: number): string {
  const at = Number.isFinite(t.timeUnixMs) && t.timeUnixMs > 0 ? ` at ${new Date(t.timeUnixMs).toISOString()}` : '';
  const open = t.to === 'open' && t.openMs > 0 ? `, open for ${formatMs(t.openMs)}` : '';
  const held = suppressed > 0 ? `; ${suppressed} similar transition(s) not recorded as Events (rate limit)` : '';
  const dropped = t.dropped > 0 ? `; the sidecar held back ${t.dropped} earlier transition(s)` : '';
  return `pod ${podKey}: rule ${t.rule} circuit ${t.from} → ${t.to} (${t.reason})${at}${open}${held}${dropped}`;
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
