import { describe, expect, it } from 'vitest';
import { planRedrive, redriveId } from '../../src/task-queue/plan-redrive.ts';

describe('planRedrive (the sluice.dev/redrive annotation)', () => {
  it('no annotation and nothing running: nothing to do', () => {
    expect(planRedrive('uid', undefined, true, undefined)).toEqual({ action: 'none' });
  });

  it('a new value starts a redrive with the defaults filled in, under an id derived from the uid and the value', () => {
    const step = planRedrive('uid-1', '{"error": "http 5"}', true, undefined);
    expect(step).toMatchObject({ action: 'start', request: { max: 0, perSecond: 100, error: 'http 5', cause: '' } });
    if (step.action !== 'start') throw new Error('expected start');
    expect(step.id).toBe(redriveId(step.requestHash));
    // Same value on another object (another uid): another redrive.
    const other = planRedrive('uid-2', '{"error": "http 5"}', true, undefined);
    expect(other.action === 'start' && other.requestHash).not.toBe(step.requestHash);
    // {} and an empty value mean every dead letter.
    expect(planRedrive('uid-1', '', true, undefined)).toMatchObject({ action: 'start', request: { max: 0 } });
  });

  it('a value already acted on is followed while running, then left alone; a Pending one is handed again', () => {
    const start = planRedrive('u', '{}', true, undefined);
    if (start.action !== 'start') throw new Error('expected start');
    const request = start.requestHash;
    expect(planRedrive('u', '{}', true, { request, state: 'Pending' })).toMatchObject({ action: 'start', requestHash: request });
    expect(planRedrive('u', '{}', true, { request, state: 'running' })).toEqual({ action: 'follow', requestHash: request, id: redriveId(request) });
    expect(planRedrive('u', '{}', true, { request, state: 'done' })).toEqual({ action: 'none' });
    // The annotation removed while it runs: it is still followed to the end.
    expect(planRedrive('u', undefined, true, { request, state: 'running' })).toMatchObject({ action: 'follow' });
    // Changed value: a new redrive.
    expect(planRedrive('u', '{} ', true, { request, state: 'done' })).toMatchObject({ action: 'start' });
  });

  it('refuses what is not a redrive request, naming the problem, once per value', () => {
    const cases: [string, boolean, RegExp][] = [
      ['not json', true, /is not JSON/],
      ['[1]', true, /must be a JSON object/],
      ['{"perSecond": 0}', true, /perSecond must be an integer from 1 to 10000/],
      ['{"filter": "x"}', true, /unknown field "filter"/],
      ['{"cause": "bored"}', true, /cause must be "permanent" or "exhausted"/],
      ['{}', false, /no spec.deadLetter.stream/],
    ];
    for (const [value, hasDeadLetter, message] of cases) {
      const step = planRedrive('u', value, hasDeadLetter, undefined);
      expect(step.action, value).toBe('refuse');
      if (step.action !== 'refuse') continue;
      expect(step.status.state).toBe('Invalid');
      expect(step.status.message).toMatch(message);
      expect(planRedrive('u', value, hasDeadLetter, step.status), value).toEqual({ action: 'none' });
    }
  });
});
