import { describe, expect, it } from 'vitest';
import { MessageScanner } from '../../src/grpc/grpc-framing.ts';

function frame(len: number, flag = 0): Buffer {
  const b = Buffer.alloc(5 + len, 0xaa);
  b[0] = flag;
  b.writeUInt32BE(len, 1);
  return b;
}

describe('MessageScanner', () => {
  it('counts whole messages in one chunk, empty messages included', () => {
    const s = new MessageScanner(100);
    expect(s.push(Buffer.concat([frame(3), frame(0), frame(100)]))).toBeUndefined();
    expect(s.messages).toBe(3);
    expect(s.atBoundary).toBe(true);
  });

  it('follows prefixes and payloads split at every byte', () => {
    const bytes = Buffer.concat([frame(7), frame(0, 1), frame(300)]);
    const s = new MessageScanner(300);
    for (let i = 0; i < bytes.length; i++) {
      expect(s.push(bytes.subarray(i, i + 1))).toBeUndefined();
      if (i < bytes.length - 1) expect(s.atBoundary).toBe(i === 11 || i === 16);
    }
    expect(s.messages).toBe(3);
    expect(s.atBoundary).toBe(true);
  });

  it('refuses a message over the limit as soon as its prefix is complete', () => {
    const s = new MessageScanner(1024);
    const f = frame(1025);
    expect(s.push(f.subarray(0, 4))).toBeUndefined();
    expect(s.push(f.subarray(4, 5))).toEqual({ kind: 'too_large', size: 1025, limit: 1024 });
  });

  it('says how much of the failing chunk precedes the refused message, so whole messages before it can pass', () => {
    const s = new MessageScanner(100);
    const ok = Buffer.concat([frame(3), frame(0)]);
    expect(s.push(Buffer.concat([ok, frame(101)]))).toEqual({ kind: 'too_large', size: 101, limit: 100 });
    expect(s.failedAt).toBe(ok.length);
    // The rest of a message, then a bad flag: the rest still counts as passable.
    const t = new MessageScanner(100);
    expect(t.push(frame(10).subarray(0, 8))).toBeUndefined();
    expect(t.push(Buffer.concat([Buffer.alloc(7), frame(1, 9)]))).toEqual({ kind: 'bad_flag', flag: 9 });
    expect(t.failedAt).toBe(7);
    // A prefix split over chunks began before the failing one: nothing of that chunk may pass.
    const u = new MessageScanner(100);
    expect(u.push(frame(200).subarray(0, 2))).toBeUndefined();
    expect(u.push(frame(200).subarray(2, 5))).toMatchObject({ kind: 'too_large' });
    expect(u.failedAt).toBe(0);
  });

  it('reads the length as unsigned 32-bit big-endian', () => {
    const s = new MessageScanner(2 ** 32);
    const prefix = Buffer.from([0, 0xff, 0xff, 0xff, 0xff]);
    expect(s.push(prefix)).toBeUndefined();
    expect(s.atBoundary).toBe(false);
    expect(new MessageScanner(2 ** 32 - 2).push(prefix)).toEqual({ kind: 'too_large', size: 2 ** 32 - 1, limit: 2 ** 32 - 2 });
  });

  it('refuses a compressed flag other than 0 or 1, and stays failed', () => {
    const s = new MessageScanner(100);
    expect(s.push(Buffer.concat([frame(2), frame(2, 2)]))).toEqual({ kind: 'bad_flag', flag: 2 });
    expect(s.push(frame(1))).toEqual({ kind: 'bad_flag', flag: 2 });
    expect(s.atBoundary).toBe(false);
  });

  it('is not at a boundary inside a prefix or a payload', () => {
    const s = new MessageScanner(100);
    s.push(frame(10).subarray(0, 3));
    expect(s.atBoundary).toBe(false);
    s.push(frame(10).subarray(3, 8));
    expect(s.atBoundary).toBe(false);
  });

  it('rejects a nonsensical limit', () => {
    expect(() => new MessageScanner(-1)).toThrow(RangeError);
    expect(() => new MessageScanner(1.5)).toThrow(RangeError);
  });
});
