/**
 * The gRPC port speaks HTTP/2 with prior knowledge (h2c), so every connection must open with the
 * 24-byte client preface. Looking at the first bytes lets the listener answer an HTTP/1.x client
 * in words it understands, and drop anything else, instead of replying to both with HTTP/2 frames.
 */

export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export type PrefaceVerdict = 'h2' | 'http1' | 'garbage' | 'need-more';

/** Longest request method the HTTP/1 sniff waits for before calling the bytes garbage. */
const MAX_METHOD = 16;

export function classifyPreface(bytes: Uint8Array): PrefaceVerdict {
  const n = Math.min(bytes.length, HTTP2_PREFACE.length);
  let h2 = true;
  for (let i = 0; i < n; i++) {
    if (bytes[i] !== HTTP2_PREFACE[i]) {
      h2 = false;
      break;
    }
  }
  if (h2) return bytes.length >= HTTP2_PREFACE.length ? 'h2' : 'need-more';
  // An HTTP/1.x request line starts with a method token (upper-case letters) and a space.
  for (let i = 0; i < bytes.length && i <= MAX_METHOD; i++) {
    const c = bytes[i] as number;
    if (c === 0x20) return i > 0 ? 'http1' : 'garbage';
    if (c < 0x41 || c > 0x5a) return 'garbage';
  }
  return bytes.length > MAX_METHOD ? 'garbage' : 'need-more';
}
