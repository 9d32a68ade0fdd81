import { describe, expect, it } from 'vitest';
import type { ElectionClaim } from '../../src/leader-election/leader-reports.ts';
import { parseLeadershipReport } from '../../src/leader-election/leader-reports.ts';
import { planLeadership, type LeaderCandidate, type LeadershipState } from '../../src/leader-election/plan-leadership.ts';

const NOW = 1_700_000_000_000;
const T0 = '2023-11-14T22:13:20Z';
const claim = (leader: boolean, fencingToken?: number, validForMs = 5_000): ElectionClaim =>
  ({ election: 'shop/push', leader, fencingToken, validUntil: leader ? NOW + validForMs : undefined, receivedAt: NOW });
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
    const p = planLeadership({ previous, candidates, now: NOW, nowIso: T0, graceUntil: graceUntil ?? 0, ttlMs: 10_000 });
    expect(p.state.holder).toBe(holder);
    expect(p.state.fencingToken).toBe(token);
    expect(p.state.transitions).toBe(transitions);
    expect(p.holderChanged).toBe(changed);
    if (changed) expect(p.state.lastTransitionTime).toBe(T0);
    else expect(p.state.lastTransitionTime).toBe(previous.lastTransitionTime);
    expect(p.ignored.map((i) => `${i.pod}:${i.why}`)).toEqual(ignored ?? []);
  });

  describe('claims a pod cannot back up', () => {
    const forged = (token: number): ElectionClaim => ({ election: 'shop/push', leader: true, fencingToken: token, validUntil: Date.parse('2099-01-01T00:00:00Z'), receivedAt: NOW });
    const plan = (previous: LeadershipState, candidates: LeaderCandidate[], lock?: Parameters<typeof planLeadership>[0]['lock']) =>
      planLeadership({ previous, candidates, now: NOW, nowIso: T0, graceUntil: 0, ttlMs: 2_000, lock });

    it('a validUntil in 2099 counts for one ttl from the report, then the claim has expired', () => {
      expect(plan(none, [cand('x', forged(5))]).recheckAt).toBe(NOW + 2_000);
      const later = planLeadership({ previous: none, candidates: [cand('x', forged(5))], now: NOW + 2_001, nowIso: T0, graceUntil: 0, ttlMs: 2_000 });
      expect(later.state.holder).toBeUndefined();
      expect(later.ignored).toEqual([{ pod: 'x', why: 'Expired' }]);
    });

    it('a token above every fencing counter on the lock nodes was never issued', () => {
      const p = plan(held('a', 4), [cand('a', claim(true, 4)), cand('x', forged(999_999))], { state: 'ok', highestToken: 4 });
      expect(p.state.holder).toBe('a');
      expect(p.ignored).toEqual([{ pod: 'x', why: 'UnknownToken' }]);
    });

    it('a real new term (token within the counter) is believed', () => {
      expect(plan(held('a', 4), [cand('b', claim(true, 5))], { state: 'ok', highestToken: 5 }).state.holder).toBe('b');
    });

    it('lock nodes unreachable: no new term is believed, the holder renewing keeps its label', () => {
      const p = plan(held('a', 4), [cand('a', claim(true, 4)), cand('b', claim(true, 5))], { state: 'unreachable' });
      expect(p.state.holder).toBe('a');
      expect(p.ignored).toEqual([{ pod: 'b', why: 'Unverified' }]);
    });

    it('two pods claiming the same new token: neither leads', () => {
      const p = plan(held('a', 4), [cand('b', claim(true, 5)), cand('x', forged(5))], { state: 'ok', highestToken: 5 });
      expect(p.state.holder).toBeUndefined();
      expect(p.ignored.map((i) => `${i.pod}:${i.why}`).sort()).toEqual(['b:DuplicateToken', 'x:DuplicateToken']);
    });
  });

  it('asks to look again when the holder lease would end', () => {
    const p = planLeadership({ previous: none, candidates: [cand('a', claim(true, 1, 3_000))], now: NOW, nowIso: T0, graceUntil: 0, ttlMs: 10_000 });
    expect(p.recheckAt).toBe(NOW + 3_000);
  });
});

describe('parseLeadershipReport', () => {
  it('reads the sidecar LeadershipFeature.status() shape', () => {
    const claims = parseLeadershipReport({ leadership: { elections: [
      { election: 'shop/push', leader: true, holder: 'p1', fencingToken: 7, validUntil: '2023-11-14T22:13:25.000Z', since: 'x', at: 'y' },
      { election: 'shop/other', leader: false, holder: 'p2', fencingToken: 3 },
    ], appLocksHeld: 0 } }, NOW);
    expect(claims?.get('shop/push')).toEqual({ election: 'shop/push', leader: true, fencingToken: 7, validUntil: NOW + 5_000, receivedAt: NOW });
    expect(claims?.get('shop/other')).toEqual({ election: 'shop/other', leader: false, fencingToken: 3, validUntil: undefined, receivedAt: NOW });
  });

  it.each([
    [{ health: { version: 'x' } }], [null], ['text'], [{ leadership: {} }],
  ])('a report without leadership (%j) is not about leadership', (report) => {
    expect(parseLeadershipReport(report, NOW)).toBeUndefined();
  });

  it('drops malformed entries and tokens', () => {
    const claims = parseLeadershipReport({ leadership: { elections: [{ leader: true }, { election: 'a/b', leader: true, fencingToken: -1, validUntil: 'never' }] } }, NOW);
    expect([...claims!.values()]).toEqual([{ election: 'a/b', leader: true, fencingToken: undefined, validUntil: undefined, receivedAt: NOW }]);
  });
});
