import { describe, expect, it } from 'vitest';
import { parseBatch, parseSingleTask } from '../../src/queue/enqueue-request.ts';
import { QueueError } from '../../src/queue/errors.ts';

const NOW = 1_700_000_000_000;
const single = (headers: Record<string, string>, query = '', body = '{}') =>
  parseSingleTask({ headers, query: new URLSearchParams(query), body: Buffer.from(body) }, NOW);
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err instanceof QueueError ? err.code : 'not a QueueError';
  }
  return 'no error';
};

describe('parseSingleTask', () => {
  it('keeps the body and its content type', () => {
    const t = single({ 'content-type': 'text/csv' }, '', 'a,b');
    expect(t.payload.toString()).toBe('a,b');
    expect(t.contentType).toBe('text/csv');
    expect(t.delayMs).toBe(0);
    expect(t.idempotencyKey).toBeUndefined();
  });

  it.each([
    [{ 'sluice-delay': '30s' }, '', 30_000],
    [{ 'sluice-delay': '250' }, '', 250],
    [{}, 'delay=2m', 120_000],
    [{ 'sluice-not-before': new Date(NOW + 5_000).toISOString() }, '', 5_000],
    [{}, `notBefore=${NOW + 1_234}`, 1_234],
    [{ 'sluice-not-before': new Date(NOW - 5_000).toISOString() }, '', 0],
  ])('reads delays: %o %s → %i ms', (headers, query, delay) => {
    expect(single(headers, query).delayMs).toBe(delay);
  });

  it('reads the Idempotency-Key', () => {
    expect(single({ 'idempotency-key': 'order-17' }).idempotencyKey).toBe('order-17');
  });

  it.each([
    [{ 'sluice-delay': 'soon' }],
    [{ 'sluice-not-before': 'tomorrow' }],
    [{ 'sluice-delay': '1s', 'sluice-not-before': '0' }],
    [{ 'idempotency-key': 'x'.repeat(300) }],
    [{ 'sluice-delay': '999999h' }],
    [{ 'sluice-delay': String(31 * 86_400_000) }],
  ])('refuses %o', (headers) => {
    expect(code(() => single(headers))).toBe('SLUICE_ERR_QUEUE_BAD_TASK');
  });
});

describe('parseBatch', () => {
  it('reads JSON payloads, text bodies, keys and delays', () => {
    const tasks = parseBatch(Buffer.from(JSON.stringify({ tasks: [
      { payload: { order: 1 }, idempotencyKey: 'k1' },
      { body: 'hello', contentType: 'text/plain', delay: '1s' },
      { payload: [1, 2], delay: 50 },
    ] })), NOW);
    expect(tasks.map((t) => [t.payload.toString(), t.contentType, t.idempotencyKey, t.delayMs])).toEqual([
      ['{"order":1}', 'application/json', 'k1', 0],
      ['hello', 'text/plain', undefined, 1_000],
      ['[1,2]', 'application/json', undefined, 50],
    ]);
  });

  it.each([
    ['not json'],
    ['{}'],
    ['{"tasks": []}'],
    ['{"tasks": [1]}'],
    ['{"tasks": [{"nothing": 1}]}'],
    ['{"tasks": [{"body": 5}]}'],
    ['{"tasks": [{"body": "x", "contentType": "text/plain\\r\\nx-injected: 1"}]}'],
    ['{"tasks": [{"body": "x", "contentType": 7}]}'],
    ['{"tasks": [{"body": "x", "contentType": ""}]}'],
    [JSON.stringify({ tasks: Array.from({ length: 1001 }, () => ({ payload: 1 })) })],
    ['{"tasks": [{"payload": 1, "delay": "721h"}]}'],
    ['{"tasks": [{"payload": 1, "notBefore": "2999-01-01T00:00:00Z"}]}'],
    ['{"tasks": [{"body": "more than sixteen bytes of text"}]}'],
  ])('refuses %s', (body) => {
    expect(code(() => parseBatch(Buffer.from(body), NOW, 16))).toBe('SLUICE_ERR_QUEUE_BAD_TASK');
  });

  it('accepts a delay of up to 30 days', () => {
    expect(parseBatch(Buffer.from('{"tasks": [{"payload": 1, "delay": "720h"}]}'), NOW)[0]!.delayMs).toBe(30 * 86_400_000);
  });
});
