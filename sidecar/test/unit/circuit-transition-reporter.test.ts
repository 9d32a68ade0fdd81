import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../lib/clock.ts';
import { createLogger } from '../../../lib/log.ts';
import { compilePlan } from '../../../lib/policy/compile.ts';
import type { RequestAttributes } from '../../../lib/policy/match.ts';
import type { CircuitTransition } from '../../../lib/proto/discovery.ts';
import { CircuitTransitionReporter } from '../../src/breaker/circuit-transition-reporter.ts';
import { PolicyEngine, Permit } from '../../src/policy-engine/engine.ts';
import { SidecarMetrics } from '../../src/metrics.ts';

const policy = parse(`
apiVersion: sluice.dev/v1alpha1
kind: CircuitBreakerPolicy
metadata: {name: backend, namespace: shop}
spec:
  selector: {}
  rules:
    - name: app
      failureConditions: {httpStatuses: ["5xx"]}
      trip: {consecutiveFailures: 2}
      openDuration: 1s
      halfOpen: {maxProbes: 1, successesToClose: 1}
`);

const req: RequestAttributes = { protocol: 'http', method: 'GET', path: '/x', header: () => undefined };

/** The engine with a reporter whose log lines and sent transitions the test reads. */
function setup(opts: { connected?: boolean; perSecond?: number; burst?: number } = {}) {
  const clock = new ManualClock();
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('info', { component: 'sluice-proxy' }, (l) => lines.push(JSON.parse(l)));
  const sent: CircuitTransition[] = [];
  const reporter = new CircuitTransitionReporter({
    logger, clock, perSecond: opts.perSecond, burst: opts.burst,
    send: (t) => (opts.connected === false ? false : (sent.push(t), true)),
  });
  const engine = new PolicyEngine(compilePlan([policy]), { clock, metrics: new SidecarMetrics(), onCircuitChange: (r, c) => reporter.record(r, c) });
  const call = (status: number) => {
    const p = engine.check(req, '127.0.0.1');
    if (p instanceof Permit) p.done({ status });
    return p instanceof Permit;
  };
  return { clock, lines, sent, reporter, call };
}

describe('circuit transitions: log lines and discovery reports', () => {
  it('logs each transition as one structured line with rule, from, to and reason', () => {
    const { clock, lines, call } = setup();
    call(500);
    call(500);
    expect(call(200)).toBe(false); // open: rejected
    clock.advance(1_000);
    expect(call(200)).toBe(true); // the probe closes it
    const circuit = lines.filter((l) => String(l.msg).startsWith('circuit'));
    expect(circuit).toEqual([
      expect.objectContaining({ level: 'warn', msg: 'circuit opened', rule: 'shop/backend/app', from: 'closed', to: 'open', reason: 'ConsecutiveFailures', openMs: 1000, component: 'sluice-proxy' }),
      expect.objectContaining({ level: 'info', msg: 'circuit half-open', rule: 'shop/backend/app', from: 'open', to: 'half-open', reason: 'OpenDurationElapsed' }),
      expect.objectContaining({ level: 'info', msg: 'circuit closed', rule: 'shop/backend/app', from: 'half-open', to: 'closed', reason: 'ProbesSucceeded' }),
    ]);
    for (const l of circuit) expect(typeof l.time).toBe('string');
  });

  it('sends each transition with the policy, the rule name and the wall-clock time', () => {
    const { clock, sent, call } = setup();
    call(500);
    call(500);
    expect(sent).toEqual([{
      policyNamespace: 'shop', policyName: 'backend', rule: 'app', from: 'closed', to: 'open',
      reason: 'ConsecutiveFailures', timeUnixMs: clock.wallNow(), openMs: 1000, dropped: 0,
    }]);
  });

  it('rate-limits what it sends, still logs every transition, and says how many were held back', () => {
    const { clock, sent, lines, call, reporter } = setup({ perSecond: 1, burst: 1 });
    call(500);
    call(500); // open: sent
    clock.advance(1_000); // one token back
    call(500); // open → half-open (sent), the probe fails → open again (held back)
    expect(lines.filter((l) => String(l.msg).startsWith('circuit'))).toHaveLength(3);
    expect(sent.map((t) => t.to)).toEqual(['open', 'half-open']);
    expect(reporter.pendingDropped).toBe(1);
    clock.advance(2_000); // the open time doubled; one token back
    call(200); // open → half-open (sent, saying one was held back), the probe closes it (held back)
    expect(sent.slice(2).map((t) => [t.to, t.dropped])).toEqual([['half-open', 1]]);
    expect(reporter.pendingDropped).toBe(1);
    expect(lines.filter((l) => String(l.msg).startsWith('circuit')).map((l) => l.to)).toEqual(['open', 'half-open', 'open', 'half-open', 'closed']);
  });

  it('counts a transition it could not send (no stream) and reports it with the next one', () => {
    const s = setup({ connected: false });
    s.call(500);
    s.call(500);
    expect(s.reporter.pendingDropped).toBe(1);
    expect(s.sent).toEqual([]);
  });
});
