import { gunzipSync, inflateSync } from 'node:zlib';

/**
 * gRPC's length-prefixed messages (1 byte compressed flag, 4 bytes big-endian length, payload),
 * scanned as bytes stream past. The scanner keeps five numbers of state and never holds payload,
 * so a message over the limit is refused as soon as its prefix is read — before its body
 * arrives — and a stream of any length costs constant memory. Bytes pass through untouched.
 */

export const MESSAGE_PREFIX_BYTES = 5;

export type FramingError =
  | { readonly kind: 'too_large'; readonly size: number; readonly limit: number }
  | { readonly kind: 'inflates_too_large'; readonly limit: number }
  | { readonly kind: 'bad_compression'; readonly reason: string }
  | { readonly kind: 'bad_flag'; readonly flag: number };

/** The `grpc-encoding` values whose messages the sidecar can inflate to count them. */
export const COUNTABLE_ENCODINGS = new Set(['identity', 'gzip', 'deflate']);

export class MessageScanner {
  readonly maxMessageBytes: number;
  /** Complete messages seen so far. */
  messages = 0;
  private prefixRead = 0;
  private length = 0;
  private remaining = 0;
  private failed: FramingError | undefined;
  /**
   * After `push` returned an error: how many bytes of that chunk precede the offending message's
   * prefix (0 when the prefix began in an earlier chunk). Those bytes are whole messages, or the
   * rest of one, that may still be passed on.
   */
  failedAt = 0;
  private prefixStart = 0;
  /**
   * Counting compressed messages (the request direction): the `grpc-encoding` they use, or null
   * when none was declared. Undefined: compressed messages are measured by their length only.
   */
  private readonly encoding: string | null | undefined;
  /** The payload of the compressed message passing now, held until it is whole (≤ the limit). */
  private compressed: Uint8Array[] | undefined;

  constructor(maxMessageBytes: number, opts: { countInflated?: { encoding: string | undefined } } = {}) {
    if (!(maxMessageBytes >= 0) || !Number.isSafeInteger(maxMessageBytes)) throw new RangeError('maxMessageBytes must be a non-negative integer');
    this.maxMessageBytes = maxMessageBytes;
    this.encoding = opts.countInflated ? (opts.countInflated.encoding ?? null) : undefined;
  }

  /** Scans the next chunk; the first error sticks (the stream is beyond repair once misframed). */
  push(chunk: Uint8Array): FramingError | undefined {
    if (this.failed) return this.failed;
    const n = chunk.length;
    let i = 0;
    this.prefixStart = 0; // a prefix carried over from the last chunk began before this one
    while (i < n) {
      if (this.remaining > 0) {
        // Inside a payload: skip it whole, the common case costs one subtraction per chunk.
        const take = Math.min(this.remaining, n - i);
        if (this.compressed) this.compressed.push(chunk.subarray(i, i + take));
        this.remaining -= take;
        i += take;
        if (this.remaining === 0) {
          if (this.compressed) {
            const err = this.checkInflated(this.compressed);
            this.compressed = undefined;
            if (err) return this.fail(err);
          }
          this.messages++;
        }
        continue;
      }
      const b = chunk[i++] as number;
      if (this.prefixRead === 0) {
        this.prefixStart = i - 1;
        // Only 0 (plain) and 1 (compressed per grpc-encoding) are defined.
        if (b > 1) return this.fail({ kind: 'bad_flag', flag: b });
        if (b === 1 && this.encoding !== undefined) {
          if (this.encoding === null || this.encoding === 'identity') return this.fail({ kind: 'bad_compression', reason: 'a compressed message without a grpc-encoding' });
          this.compressed = [];
        }
        this.length = 0;
      } else {
        this.length = this.length * 256 + b;
      }
      if (++this.prefixRead < MESSAGE_PREFIX_BYTES) continue;
      this.prefixRead = 0;
      if (this.length > this.maxMessageBytes) return this.fail({ kind: 'too_large', size: this.length, limit: this.maxMessageBytes });
      if (this.length === 0) {
        this.compressed = undefined;
        this.messages++;
      } else this.remaining = this.length;
    }
    return undefined;
  }

  /**
   * Inflates a whole compressed message, stopping past the limit (so a bomb costs at most the
   * limit in CPU and memory), and refuses it if the app would receive more than the limit.
   * Only the message that crosses the limit is held back: the app never gets it complete.
   */
  private checkInflated(parts: Uint8Array[]): FramingError | undefined {
    const input = parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts);
    const limit = this.maxMessageBytes;
    try {
      const out = (this.encoding === 'gzip' ? gunzipSync : inflateSync)(input, { maxOutputLength: Math.max(1, limit + 1) });
      return out.length > limit ? { kind: 'inflates_too_large', limit } : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return { kind: 'inflates_too_large', limit };
      return { kind: 'bad_compression', reason: `the message does not inflate as ${this.encoding}` };
    }
  }

  private fail(err: FramingError): FramingError {
    this.failedAt = Math.max(0, this.prefixStart);
    return (this.failed = err);
  }

  /** True when the bytes so far end exactly between messages (a clean end of stream). */
  get atBoundary(): boolean {
    return this.prefixRead === 0 && this.remaining === 0 && this.failed === undefined;
  }
}
