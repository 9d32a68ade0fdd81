import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../lib/clock.ts';
import { closeFrame, FrameInspector } from '../../src/websocket/frame-inspector.ts';

/** A masked client→server frame, as a browser would send it. */
function frame(opcode: number, payload: Buffer, fin = true): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | len])
    : len < 65536 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, len >> 8, len & 0xff])
    : Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(len)); return b; })()]);
  return Buffer.concat([head, Buffer.from([1, 2, 3, 4]), payload]);
}

describe('FrameInspector', () => {
  it('passes frames through unchanged, even split byte by byte', () => {
    const insp = new FrameInspector({ maxMessageBytes: 1000, messagesPerSecond: 100, clock: new ManualClock() });
    const stream = Buffer.concat([frame(1, Buffer.from('hello')), frame(9, Buffer.alloc(0)), frame(2, Buffer.alloc(300))]);
    const out: Buffer[] = [];
    for (const byte of stream) {
      out.push(insp.push(Buffer.from([byte])));
      expect(insp.violation).toBeUndefined();
    }
    expect(Buffer.concat(out).equals(stream)).toBe(true);
  });

  it('stops before a message over maxMessageBytes, summing fragments (1009)', () => {
    const insp = new FrameInspector({ maxMessageBytes: 100 });
    const first = frame(1, Buffer.alloc(60), false);
    const second = frame(0, Buffer.alloc(60), true);
    const forwarded = insp.push(Buffer.concat([first, second]));
    expect(insp.violation?.code).toBe(1009);
    expect(forwarded.length).toBe(first.length); // nothing of the offending frame is forwarded
  });

  it('allows messagesPerSecond and refuses the next (1008); pong frames do not count', () => {
    const clock = new ManualClock();
    const insp = new FrameInspector({ messagesPerSecond: 3, clock });
    const msg = frame(1, Buffer.from('x'));
    for (let i = 0; i < 3; i++) expect(insp.push(msg).length).toBe(msg.length);
    const pong = frame(10, Buffer.from('pong'));
    expect(insp.push(pong).length).toBe(pong.length);
    expect(insp.violation).toBeUndefined();
    expect(insp.push(msg).length).toBe(0);
    expect(insp.violation?.code).toBe(1008);
    const fresh = new FrameInspector({ messagesPerSecond: 3, clock });
    for (let i = 0; i < 3; i++) fresh.push(msg);
    clock.advance(334); // one message's worth of refill
    expect(fresh.push(msg).length).toBe(msg.length);
    expect(fresh.violation).toBeUndefined();
  });

  it("a client's pings take from messagesPerSecond like messages", () => {
    const clock = new ManualClock();
    const insp = new FrameInspector({ messagesPerSecond: 3, clock });
    const ping = frame(9, Buffer.from('ping'));
    for (let i = 0; i < 3; i++) expect(insp.push(ping).length).toBe(ping.length);
    expect(insp.violation).toBeUndefined();
    expect(insp.push(ping).length).toBe(0);
    expect(insp.violation?.code).toBe(1008);
  });

  it('under a size limit a compressed (RSV1) frame is refused with 1002 before any of it passes', () => {
    const insp = new FrameInspector({ maxMessageBytes: 1024 });
    const plain = frame(2, Buffer.alloc(10));
    const compressed = Buffer.from(frame(2, Buffer.alloc(10)));
    compressed[0] = compressed[0]! | 0x40;
    expect(insp.push(Buffer.concat([plain, compressed])).length).toBe(plain.length);
    expect(insp.violation?.code).toBe(1002);
    // Without a size rule, compression negotiated by the app passes untouched.
    const free = new FrameInspector({});
    expect(free.push(compressed).length).toBe(compressed.length);
  });

  it('builds close frames with the code, masked towards the app', () => {
    const plain = closeFrame(1001, 'bye', false);
    expect([...plain.subarray(0, 4)]).toEqual([0x88, 5, 0x03, 0xe9]);
    const masked = closeFrame(1008, 'x', true);
    expect(masked[1]! & 0x80).toBe(0x80);
    expect(masked.length).toBe(2 + 4 + 3);
  });
});
