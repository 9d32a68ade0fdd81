import { describe, expect, it } from 'vitest';
import { statusTable } from '../../../lib/policy/compile.ts';
import { decideSettlement, isExhausted, type DeliveryOutcome } from '../../src/queue/retry-decision.ts';

const retry = { maxAttempts: 3, initialMs: 100, maxMs: 1_000, multiplier: 2, permanentStatuses: statusTable(['422']) };
const fail = (reason: string, permanent = false): DeliveryOutcome => ({ ok: false, permanent, status: undefined, reason });
const noJitter = () => 0;

describe('decideSettlement', () => {
  it.each<[string, DeliveryOutcome, number, unknown]>([
    ['success acks', { ok: true, status: 200 }, 1, { kind: 'ack' }],
    ['success on the last attempt acks', { ok: true, status: 204 }, 3, { kind: 'ack' }],
    ['a failure retries after backoff(1)', fail('http 500'), 1, { kind: 'retry', delayMs: 100, nextAttempt: 2, reason: 'http 500' }],
    ['a timeout retries after backoff(2)', fail('timeout'), 2, { kind: 'retry', delayMs: 200, nextAttempt: 3, reason: 'timeout' }],
    ['the last attempt failing dead-letters', fail('http 503'), 3, { kind: 'dead', reason: 'http 503', cause: 'exhausted' }],
    ['a permanent failure dead-letters at once', fail('http 422', true), 1, { kind: 'dead', reason: 'http 422', cause: 'permanent' }],
  ])('%s', (_name, outcome, attempt, expected) => {
    expect(decideSettlement(outcome, attempt, retry, noJitter)).toEqual(expected);
  });

  it('a reclaimed task past maxAttempts is exhausted', () => {
    expect(isExhausted(3, retry)).toBe(false);
    expect(isExhausted(4, retry)).toBe(true);
  });
});
