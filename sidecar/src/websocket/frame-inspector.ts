import type { Clock } from '../../../lib/clock.ts';

export interface Violation {
  code: 1002 | 1008 | 1009;
  reason: string;
}

/**
 * Watches client→server WebSocket frames as they stream past (RFC 6455 §5.2) without buffering
 * messages: it reads each frame header (at most 14 bytes, kept across chunk boundaries), skips the
 * payload by count, and returns how many bytes may be forwarded. A message is counted when its
 * first frame starts; its size is the sum of its frames' declared lengths, so an oversized message
 * is refused at the header of the frame that crosses the limit — before any byte of that frame is
 * forwarded. A client's ping takes from the message rate like a message (answering pings costs
 * the app as much); pong and close frames do not, and pongs answering the sidecar's own pings
 * (`ownPong`) are removed from the stream.
 *
 * Where a size limit applies, permessage-deflate was withdrawn from the handshake, so a frame with
 * RSV1 (compressed) is a protocol error (1002): its declared length says nothing of what the app
 * would inflate it to.
 */
export class FrameInspector {
  /** Bytes of a frame header split across chunks, held back until the header is complete. */
  private held: Buffer | undefined;
  private payloadLeft = 0;
  private messageBytes = 0;
  private readonly maxMessageBytes: number;
  /**
   * The per-connection message rate as an inline token bucket (GCRA: one theoretical arrival
   * time). Thousands of idle connections each hold one, so it is two numbers, not a limiter object.
   */
  private readonly interval: number;
  private readonly capacity: number;
  private tat = -Infinity;
  private readonly clock: Clock | undefined;
  /** The payload of the sidecar's own pings: client pongs echoing it are taken out of the stream. */
  private readonly ownPong: Buffer | undefined;
  /** Output pieces before a removed frame, and where the kept bytes resume (per push). */
  private kept: Buffer[] | undefined;
  private keepFrom = 0;
  /** Pongs answering the sidecar's pings, removed so far. */
  ownPongs = 0;

  constructor(opts: { maxMessageBytes?: number; messagesPerSecond?: number; clock?: Clock; ownPong?: Buffer }) {
    this.ownPong = opts.ownPong;
    this.maxMessageBytes = opts.maxMessageBytes ?? Infinity;
    const rate = opts.messagesPerSecond;
    this.interval = rate === undefined ? 0 : 1000 / rate;
    this.capacity = rate === undefined ? Infinity : 1000; // a burst of one second's worth
    this.clock = rate === undefined ? undefined : opts.clock;
  }

  /** Set when forwarding must stop; push() then returned only the bytes before the offending frame. */
  violation: Violation | undefined;

  /**
   * Returns the bytes that may be forwarded now (the chunk itself in the common case: no copy,
   * no allocation). After a violation, check `violation`.
   */
  push(input: Buffer): Buffer {
    let chunk = input;
    if (this.held) {
      chunk = Buffer.concat([this.held, input]);
      this.held = undefined;
    }
    const n = chunk.length;
    this.kept = undefined;
    this.keepFrom = 0;
    let i = 0;
    while (i < n) {
      if (this.payloadLeft > 0) {
        const take = Math.min(this.payloadLeft, n - i);
        this.payloadLeft -= take;
        i += take;
        continue;
      }
      const frameStart = i;
      if (n - i < 2) return this.hold(chunk, i);
      const b0 = chunk[i] as number;
      const b1 = chunk[i + 1] as number;
      const len7 = b1 & 0x7f;
      const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
      if (n - i < need) return this.hold(chunk, i);
      let length = len7;
      if (len7 === 126) length = chunk.readUInt16BE(i + 2);
      else if (len7 === 127) length = Number(chunk.readBigUInt64BE(i + 2));
      i += need;
      const opcode = b0 & 0x0f;
      if (opcode === 0xa && this.ownPong !== undefined && length === this.ownPong.length) {
        // Held whole (at most 14 + 125 bytes) to compare, then dropped if it answers our ping.
        if (n - i < length) return this.hold(chunk, frameStart);
        if (this.isOwnPong(chunk, i, (b1 & 0x80) !== 0)) {
          (this.kept ??= []).push(chunk.subarray(this.keepFrom, frameStart));
          i += length;
          this.keepFrom = i;
          this.ownPongs++;
          continue;
        }
      }
      if ((b0 & 0x40) !== 0 && this.maxMessageBytes !== Infinity) {
        this.violation = { code: 1002, reason: 'compressed frame not negotiated' };
        return this.emit(chunk, frameStart);
      }
      if (opcode === 9 && this.clock && !this.takeToken(this.clock.now())) {
        this.violation = { code: 1008, reason: 'message rate limit exceeded' };
        return this.emit(chunk, frameStart);
      }
      if (opcode < 8) {
        const violation = this.onDataFrame(opcode, length);
        if (violation) {
          this.violation = violation;
          return this.emit(chunk, frameStart);
        }
        if (b0 & 0x80) this.messageBytes = 0;
      }
      this.payloadLeft = length;
    }
    return this.emit(chunk, n);
  }

  /** The bytes of `chunk` up to `end` minus the frames removed in this push (the chunk itself when none was). */
  private emit(chunk: Buffer, end: number): Buffer {
    const kept = this.kept;
    if (kept === undefined) return end === chunk.length ? chunk : chunk.subarray(0, end);
    kept.push(chunk.subarray(this.keepFrom, end));
    this.kept = undefined;
    return Buffer.concat(kept);
  }

  private isOwnPong(chunk: Buffer, at: number, masked: boolean): boolean {
    const own = this.ownPong as Buffer;
    for (let k = 0; k < own.length; k++) {
      let b = chunk[at + k] as number;
      if (masked) b ^= chunk[at - 4 + (k % 4)] as number;
      if (b !== own[k]) return false;
    }
    return true;
  }

  private takeToken(now: number): boolean {
    const next = Math.max(this.tat, now) + this.interval;
    if (next - now > this.capacity + 1e-9) return false;
    this.tat = next;
    return true;
  }

  /** True while a frame's payload or a split header is still passing. */
  get midFrame(): boolean {
    return this.payloadLeft > 0 || this.held !== undefined;
  }

  private hold(chunk: Buffer, from: number): Buffer {
    this.held = Buffer.from(chunk.subarray(from));
    return this.emit(chunk, from);
  }

  private onDataFrame(opcode: number, length: number): Violation | undefined {
    if (opcode !== 0) {
      // The first frame of a new message.
      this.messageBytes = 0;
      if (this.clock && !this.takeToken(this.clock.now())) return { code: 1008, reason: 'message rate limit exceeded' };
    }
    this.messageBytes += length;
    if (this.messageBytes > this.maxMessageBytes) return { code: 1009, reason: 'message too big' };
    return undefined;
  }
}

/** A close frame: masked when it goes client→server (to the app), unmasked server→client. */
export function closeFrame(code: number, reason: string, masked: boolean): Buffer {
  const text = Buffer.from(reason.slice(0, 120));
  const payload = Buffer.alloc(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  const head = Buffer.from([0x88, (masked ? 0x80 : 0) | payload.length]);
  if (!masked) return Buffer.concat([head, payload]);
  const mask = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (mask[i % 4] as number);
  return Buffer.concat([head, mask, payload]);
}
