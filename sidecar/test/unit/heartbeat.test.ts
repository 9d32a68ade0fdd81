import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../lib/clock.ts';
import { drainOffsetMs, drainWindowMs, staggeredDrain } from '../../src/websocket/drain.ts';
import { FrameInspector } from '../../src/websocket/frame-inspector.ts';
import { heartbeatAction, PING_FRAME, PING_PAYLOAD, sweepEveryMs, type Liveness } from '../../src/websocket/heartbeat.ts';

/** A masked client→server frame. */
function frame(opcode: number, payload: Buffer, mask = [9, 8, 7, 6]): Buffer {
  const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)));
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), Buffer.from(mask), masked]);
}

describe('heartbeatAction', () => {
  const s = { intervalMs: 1000, timeoutMs: 500 };
  const fresh = (): Liveness => ({ heard: false, lastHeardAt: 0, pingSentAt: undefined });

  it('pings a client silent for the interval, and declares it dead when the timeout passes unanswered', () => {
    const l = fresh();
    expect(heartbeatAction(l, 999, s, true)).toBe('none');
    expect(heartbeatAction(l, 1000, s, true)).toBe('ping');
    expect(heartbeatAction(l, 1499, s, true)).toBe('none');
    expect(heartbeatAction(l, 1500, s, true)).toBe('dead');
  });

  it('anything heard from the client (the pong or any data) clears the ping and restarts the interval', () => {
    const l = fresh();
    expect(heartbeatAction(l, 1000, s, true)).toBe('ping');
    l.heard = true;
    expect(heartbeatAction(l, 1200, s, true)).toBe('none');
    expect(l.pingSentAt).toBeUndefined();
    expect(heartbeatAction(l, 2100, s, true)).toBe('none');
    expect(heartbeatAction(l, 2200, s, true)).toBe('ping');
  });

  it('waits for a frame boundary to ping, but a client silent for interval + timeout is dead anyway', () => {
    const l = fresh();
    expect(heartbeatAction(l, 1000, s, false)).toBe('none');
    expect(l.pingSentAt).toBeUndefined();
    expect(heartbeatAction(l, 1499, s, false)).toBe('none');
    expect(heartbeatAction(l, 1500, s, false)).toBe('dead');
  });

  it('sweeps often enough to see a timeout within half of it, within bounds', () => {
    expect(sweepEveryMs({ intervalMs: 30_000, timeoutMs: 10_000 })).toBe(1_000);
    expect(sweepEveryMs({ intervalMs: 200, timeoutMs: 300 })).toBe(100);
    expect(sweepEveryMs({ intervalMs: 4, timeoutMs: 4 })).toBe(10);
  });
});

describe('FrameInspector with the sidecar\'s own pongs', () => {
  const own = frame(0xa, PING_PAYLOAD);

  it('the ping frame is an unmasked server→client ping carrying the payload', () => {
    expect(PING_FRAME[0]).toBe(0x89);
    expect(PING_FRAME[1]).toBe(PING_PAYLOAD.length);
    expect(PING_FRAME.subarray(2).equals(PING_PAYLOAD)).toBe(true);
  });

  it('removes pongs echoing its payload, keeps everything else, even split byte by byte', () => {
    const text = frame(1, Buffer.from('hello'));
    const appPong = frame(0xa, Buffer.from('app-ping-payload'));
    const sameLength = frame(0xa, Buffer.alloc(PING_PAYLOAD.length, 0x61));
    const stream = Buffer.concat([text, own, appPong, own, sameLength, text]);
    const expected = Buffer.concat([text, appPong, sameLength, text]);
    for (const size of [stream.length, 1, 3, 7]) {
      const insp = new FrameInspector({ messagesPerSecond: 100, clock: new ManualClock(), ownPong: PING_PAYLOAD });
      const out: Buffer[] = [];
      for (let i = 0; i < stream.length; i += size) out.push(insp.push(stream.subarray(i, i + size)));
      expect(Buffer.concat(out).equals(expected), `chunks of ${size}`).toBe(true);
      expect(insp.ownPongs).toBe(2);
      expect(insp.violation).toBeUndefined();
    }
  });

  it('own pongs never count as messages', () => {
    const clock = new ManualClock();
    const insp = new FrameInspector({ messagesPerSecond: 1, clock, ownPong: PING_PAYLOAD });
    const msg = frame(1, Buffer.from('x'));
    expect(insp.push(Buffer.concat([msg, own, own, own])).equals(msg)).toBe(true);
    expect(insp.violation).toBeUndefined();
  });

  it('without ownPong every pong passes', () => {
    const insp = new FrameInspector({});
    expect(insp.push(own).equals(own)).toBe(true);
  });
});

describe('staggered drain', () => {
  it('spreads n closes evenly over the window, the first at once', () => {
    expect([0, 1, 2, 3].map((i) => drainOffsetMs(i, 4, 1000))).toEqual([0, 250, 500, 750]);
    expect(drainOffsetMs(0, 1, 1000)).toBe(0);
  });

  it('uses at most three quarters of the grace period', () => {
    expect(drainWindowMs(10_000, 20_000)).toBe(10_000);
    expect(drainWindowMs(10_000, 2_000)).toBe(1_500);
    expect(drainWindowMs(0, 2_000)).toBe(0);
  });

  it('closes every item once, in order, and resolves after the last', async () => {
    const clock = new ManualClock();
    const closed: number[] = [];
    const done = staggeredDrain([1, 2, 3], 30, (x) => {
      closed.push(x);
      clock.advance(10);
    }, clock);
    await done;
    expect(closed).toEqual([1, 2, 3]);
  });
});
