import { describe, expect, it } from 'vitest';
import type { ElectionClaim } from '../src/leader-reports.ts';
import { parseLeadershipReport } from '../src/leader-reports.ts';
import { planLeadership, type LeaderCandidate, type LeadershipState } from '../src/plan-leadership.ts';

const NOW = 1_700_000_000_000;
const T0 = '2023-11-14T22:13:20Z';
const claim = (leader: boolean, fencingToken?: number, validForMs = 5_000): ElectionClaim =>
  ({ election: 'shop/push', leader, fencingToken, validUntil: leader ? NOW + validForMs : undefined });
const cand = (pod: string, c: ElectionClaim | undefined, selected = true): LeaderCandidate => ({ pod, selected, claim: c });
const none: LeadershipState = { holder: undefined, fencingToken: undefined, transitions: 0, lastTransitionTime: undefined };
const held = (holder: string | undefined, fencingToken: number, transitions = 1): LeadershipState => ({ holder, fencingToken, transitions, lastTransitionTime: 'before' });

describe('planLeadership', () => {
  it.each<{ name: string; previous: LeadershipState; candidates: LeaderCandidate[]; graceUntil?: number; holder: string | undefined; token: number | undefined; transitions: number; changed: boolean; ignored?: string[] }>([
    { name: 'the first claim makes a holder', previous: none, candidates: [cand('a', claim(true, 1)), cand('b', claim(false))], holder: 'a', token: 1, transitions: 1, changed: true },
    { name: 'the holder renewing its term changes nothing', previous: held('a', 4), candidates: [cand('a', claim(true, 4)), cand('b', claim(false, 4))], holder: 'a', token: 4, transitions: 1, changed: false },
    { name: 'a higher token from another pod takes over, even before the old lease ran out', previous: held('a', 4), candidates: [cand('a', claim(true, 4)), cand('b', claim(true, 5))], holder: 'b', token: 5, transitions: 2, changed: true },
    { name: 'an equal token from another pod is stale', previous: held('a', 4), candidates: [cand('a', claim(true, 4)), cand('b', claim(true, 4))], holder: 'a', token: 4, transitions: 1, changed: false, ignored: ['b:StaleToken'] },
    { name: 'a lower token from another pod is stale', previous: held('a', 4), candidates: [cand('b', claim(true, 3)), cand('a', claim(true, 4))], holder: 'a', token: 4, transitions: 1, changed: false, ignored: ['b:StaleToken'] },
    { name: 'a claim from a pod the election does not select is ignored', previous: none, candidates: [cand('x', claim(true, 9), false)], holder: undefined, token: undefined, transitions: 0, changed: false, ignored: ['x:NotSelected'] },
    { name: 'the holder whose validUntil passed is no longer the holder', previous: held('a', 4), candidates: [cand('a', claim(true, 4, -1))], holder: undefined, token: 4, transitions: 1, changed: true, ignored: ['a:Expired'] },
    { name: 'the holder stepping down leaves no holder, and the token is remembered', previous: held('a', 4), candidates: [cand('a', claim(false, 4))], holder: undefined, token: 4, transitions: 1, changed: true },
    { name: 'with no holder, an old term (token not above the last) is still stale', previous: held(undefined, 4), candidates: [cand('b', claim(true, 4))], holder: undefined, token: 4, transitions: 1, changed: false, ignored: ['b:StaleToken'] },
    { name: 'with no holder, a new term is accepted', previous: held(undefined, 4), candidates: [cand('b', claim(true, 6))], holder: 'b', token: 6, transitions: 2, changed: true },
    { name: 'a leader claim without a token is ignored', previous: none, candidates: [cand('a', claim(true, undefined))], holder: undefined, token: undefined, transitions: 0, changed: false, ignored: ['a:NoToken'] },
    { name: 'the highest of two new claims wins', previous: held('a', 1), candidates: [cand('b', claim(true, 3)), cand('c', claim(true, 2))], holder: 'b', token: 3, transitions: 2, changed: true },
    { name: 'the holder deselected (relabelled or deleted) is dropped', previous: held('a', 4), candidates: [cand('a', claim(true, 4), false)], holder: undefined, token: 4, transitions: 1, changed: true, ignored: ['a:NotSelected'] },
    { name: 'right after an operator start a silent holder is kept during the grace', previous: held('a', 4), candidates: [cand('a', undefined), cand('b', claim(false))], graceUntil: NOW + 1, holder: 'a', token: 4, transitions: 1, changed: false },
    { name: 'after the grace a silent holder is dropped', previous: held('a', 4), candidates: [cand('a', undefined)], graceUntil: NOW, holder: undefined, token: 4, transitions: 1, changed: true },
    { name: 'the grace does not keep a holder that is no longer selected', previous: held('a', 4), candidates: [cand('a', undefined, false)], graceUntil: NOW + 1, holder: undefined, token: 4, transitions: 1, changed: true },
  ])('$name', ({ previous, candidates, graceUntil, holder, token, transitions, changed, ignored }) => {
    const p = planLeadership({ previous, candidates, now: NOW, nowIso: T0, graceUntil: graceUntil ?? 0 });
    expect(p.state.holder).toBe(holder);
    expect(p.state.fencingToken).toBe(token);
    expect(p.state.transitions).toBe(transitions);
    expect(p.holderChanged).toBe(changed);
    if (changed) expect(p.state.lastTransitionTime).toBe(T0);
    else expect(p.state.lastTransitionTime).toBe(previous.lastTransitionTime);
    expect(p.ignored.map((i) => `${i.pod}:${i.why}`)).toEqual(ignored ?? []);
  });

  it('asks to look again when the holder lease would end', () => {
    const p = planLeadership({ previous: none, candidates: [cand('a', claim(true, 1, 3_000))], now: NOW, nowIso: T0, graceUntil: 0 });
    expect(p.recheckAt).toBe(NOW + 3_000);
  });
});

describe('parseLeadershipReport', () => {
  it('reads the sidecar LeadershipFeature.status() shape', () => {
    const claims = parseLeadershipReport({ leadership: { elections: [
      { election: 'shop/push', leader: true, holder: 'p1', fencingToken: 7, validUntil: '2023-11-14T22:13:25.000Z', since: 'x', at: 'y' },
      { election: 'shop/other', leader: false, holder: 'p2', fencingToken: 3 },
    ], appLocksHeld: 0 } });
    expect(claims?.get('shop/push')).toEqual({ election: 'shop/push', leader: true, fencingToken: 7, validUntil: NOW + 5_000 });
    expect(claims?.get('shop/other')).toEqual({ election: 'shop/other', leader: false, fencingToken: 3, validUntil: undefined });
  });

  it.each([
    [{ health: { version: 'x' } }], [null], ['text'], [{ leadership: {} }],
  ])('a report without leadership (%j) is not about leadership', (report) => {
    expect(parseLeadershipReport(report)).toBeUndefined();
  });

  it('drops malformed entries and tokens', () => {
    const claims = parseLeadershipReport({ leadership: { elections: [{ leader: true }, { election: 'a/b', leader: true, fencingToken: -1, validUntil: 'never' }] } });
    expect([...claims!.values()]).toEqual([{ election: 'a/b', leader: true, fencingToken: undefined, validUntil: undefined }]);
  });
});
