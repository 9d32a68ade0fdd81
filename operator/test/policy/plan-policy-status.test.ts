import { describe, expect, it } from 'vitest';
import { planPolicyStatus, type StatusInput } from '../../src/policy/plan-policy-status.ts';

const NOW = '2026-11-24T12:00:00Z';
const LATER = '2026-11-24T12:05:00Z';
const base: StatusInput = { generation: 3, existing: undefined, verdict: { accepted: true }, targets: [], now: NOW };
const cond = (plan: ReturnType<typeof planPolicyStatus>, type: string) => plan.status.conditions.find((c) => c.type === type);

describe('planPolicyStatus', () => {
  it.each([
    ['all targets programmed', [{ pod: 'shop/a', state: { state: 'programmed' } }, { pod: 'shop/b', state: { state: 'programmed' } }], 'True', 'Programmed', { selected: 2, programmed: 2 }],
    ['one waiting', [{ pod: 'shop/a', state: { state: 'programmed' } }, { pod: 'shop/b', state: { state: 'pending' } }], 'False', 'Pending', { selected: 2, programmed: 1 }],
    ['one sidecar not connected', [{ pod: 'shop/a', state: { state: 'disconnected' } }], 'False', 'Pending', { selected: 1, programmed: 0 }],
    ['one NACK', [{ pod: 'shop/a', state: { state: 'rejected', error: 'bad' } }, { pod: 'shop/b', state: { state: 'programmed' } }], 'False', 'Rejected', { selected: 2, programmed: 1 }],
    ['one ACK naming it as not in place (a listen port taken)', [{ pod: 'shop/a', state: { state: 'failed', error: 'port taken' } }, { pod: 'shop/b', state: { state: 'programmed' } }], 'False', 'Rejected', { selected: 2, programmed: 1 }],
    ['no targets', [], 'False', 'NoTargets', { selected: 0, programmed: 0 }],
  ] as const)('%s', (_t, targets, status, reason, counts) => {
    const plan = planPolicyStatus({ ...base, targets: targets as StatusInput['targets'] });
    expect(cond(plan, 'Accepted')).toMatchObject({ status: 'True', reason: 'Accepted', observedGeneration: 3 });
    expect(cond(plan, 'Programmed')).toMatchObject({ status, reason, observedGeneration: 3 });
    expect(plan.status.targets).toEqual(counts);
    expect(plan.status.observedGeneration).toBe(3);
    expect(plan.changed).toBe(true);
  });

  it('names the waiting pods and the NACK message, so a person knows where to look', () => {
    const pending = planPolicyStatus({ ...base, targets: [{ pod: 'shop/a', state: { state: 'disconnected' } }] });
    expect(cond(pending, 'Programmed')?.message).toContain('shop/a (sidecar not connected)');
    const rejected = planPolicyStatus({ ...base, targets: [{ pod: 'shop/a', state: { state: 'rejected', error: 'spec.mode: unsupported' } }] });
    expect(cond(rejected, 'Programmed')?.message).toContain('pod shop/a said: spec.mode: unsupported');
    const failed = planPolicyStatus({ ...base, targets: [{ pod: 'shop/a', state: { state: 'failed', error: 'Upstream shop/u: spec.listen: cannot listen on 127.0.0.1:16001' } }] });
    expect(cond(failed, 'Programmed')?.message).toBe('1 of 1 sidecars took generation 3 but could not put it in place; pod shop/a said: Upstream shop/u: spec.listen: cannot listen on 127.0.0.1:16001');
  });

  it('a refused spec is Accepted=False with the verdict, and Programmed=False NotAccepted', () => {
    const plan = planPolicyStatus({ ...base, verdict: { accepted: false, reason: 'Invalid', message: 'spec.rules[0].x: bad' }, targets: [{ pod: 'shop/a', state: { state: 'programmed' } }] });
    expect(cond(plan, 'Accepted')).toMatchObject({ status: 'False', reason: 'Invalid', message: 'spec.rules[0].x: bad' });
    expect(cond(plan, 'Programmed')).toMatchObject({ status: 'False', reason: 'NotAccepted' });
  });

  it('is idempotent: the same observation gives no change and no transitions', () => {
    const first = planPolicyStatus({ ...base, targets: [{ pod: 'shop/a', state: { state: 'programmed' } }] });
    const again = planPolicyStatus({ ...base, existing: first.status, now: LATER, targets: [{ pod: 'shop/a', state: { state: 'programmed' } }] });
    expect(again.changed).toBe(false);
    expect(again.transitions).toEqual([]);
    expect(again.status).toEqual(first.status);
  });

  it('moves lastTransitionTime only when a status flips, and reports transitions', () => {
    const first = planPolicyStatus({ ...base, targets: [{ pod: 'shop/a', state: { state: 'pending' } }] });
    expect(first.transitions.map((t) => `${t.type}=${t.status}/${t.reason}`)).toEqual(['Accepted=True/Accepted', 'Programmed=False/Pending']);
    const second = planPolicyStatus({ ...base, existing: first.status, now: LATER, targets: [{ pod: 'shop/a', state: { state: 'programmed' } }] });
    expect(cond(second, 'Accepted')?.lastTransitionTime).toBe(NOW);
    expect(cond(second, 'Programmed')?.lastTransitionTime).toBe(LATER);
    expect(second.transitions.map((t) => `${t.type}=${t.status}/${t.reason}`)).toEqual(['Programmed=True/Programmed']);
  });
});
