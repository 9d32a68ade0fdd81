import { describe, expect, it } from 'vitest';
import { decideFencing, parseFencingToken, type NodeAnswer } from '../../src/fencing/fencing-decision.ts';
import { acceptedTokenKey } from '../../../lib/redis/key-layout.ts';

const ok = (stored: number): NodeAnswer => [1, stored];
const no = (stored: number): NodeAnswer => [0, stored];

describe('decideFencing', () => {
  const cases: [string, NodeAnswer[], boolean, unknown][] = [
    ['a majority accepted', [ok(3), ok(3), undefined], false, { result: 'accepted' }],
    ['every node accepted', [ok(3), ok(3), ok(3)], true, { result: 'accepted' }],
    ['a majority refused', [no(9), no(8), undefined], false, { result: 'stale', newest: 9 }],
    ['one refusal and one timeout: nobody can tell yet', [no(9), null, undefined], false, undefined],
    ['one of each: undecided when all answered', [ok(1), no(9), null], true, { result: 'unavailable' }],
    ['no node answered', [null, null, null], true, { result: 'unavailable' }],
    ['five nodes, three accepted', [ok(1), ok(1), ok(1), no(4), no(4)], true, { result: 'accepted' }],
    ['five nodes, three refused', [ok(1), no(4), no(5), no(4), undefined], false, { result: 'stale', newest: 5 }],
  ];
  for (const [title, answers, complete, want] of cases) {
    it(title, () => expect(decideFencing(answers, Math.floor(answers.length / 2) + 1, complete)).toEqual(want));
  }
});

describe('parseFencingToken', () => {
  it('reads decimal integers below 2^53 and nothing else', () => {
    expect(parseFencingToken('0')).toBe(0);
    expect(parseFencingToken('42')).toBe(42);
    expect(parseFencingToken('9007199254740991')).toBe(Number.MAX_SAFE_INTEGER);
    for (const bad of ['', ' 1', '1 ', '-1', '+1', '1.0', '1e3', '0x10', '9007199254740992', '12345678901234567', 'abc']) {
      expect(parseFencingToken(bad), bad).toBeUndefined();
    }
  });
});

describe('acceptedTokenKey', () => {
  it('namespaces the key and keeps one hash tag per resource', () => {
    expect(acceptedTokenKey('shop', 'LeaderElection', 'push-broadcaster')).toBe('sluice:{shop/fence/LeaderElection/push-broadcaster}:accepted');
    expect(acceptedTokenKey('shop', 'Lock', 'a/b')).not.toBe(acceptedTokenKey('other', 'Lock', 'a/b'));
  });
});
