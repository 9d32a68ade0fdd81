import { describe, expect, it } from 'vitest';
import { decodeEntry, encodeFields } from '../../src/queue/task.ts';

const toBuffers = (fields: (string | Buffer)[]) => fields.map((f) => (Buffer.isBuffer(f) ? f : Buffer.from(f)));

describe('task entries', () => {
  it('a fresh entry is attempt 1 of a task whose id is the entry id', () => {
    const t = decodeEntry('1700000000123-4', toBuffers(['p', '{"a":1}']));
    expect(t).toMatchObject({ id: '1700000000123-4', entryId: '1700000000123-4', attempt: 1, contentType: 'application/json', availableAt: 1700000000123 });
    expect(t.payload.toString()).toBe('{"a":1}');
  });

  it('a re-appended entry keeps the task id and carries its attempt', () => {
    const fields = encodeFields({ id: '1-0', payload: Buffer.from([0, 255]), contentType: 'application/octet-stream' }, 3, 'http 500');
    const t = decodeEntry('9-0', toBuffers(fields));
    expect(t).toMatchObject({ id: '1-0', entryId: '9-0', attempt: 3, contentType: 'application/octet-stream', lastError: 'http 500' });
    expect([...t.payload]).toEqual([0, 255]);
  });

  it('each extra delivery of the same entry (a reclaim) is one more attempt', () => {
    const fields = encodeFields({ id: '1-0', payload: Buffer.from('x'), contentType: 'application/json' }, 2);
    expect(decodeEntry('9-0', toBuffers(fields), 3).attempt).toBe(4);
  });
});
