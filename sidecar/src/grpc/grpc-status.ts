import { constants as h2 } from 'node:http2';
import { GRPC_CODES } from '../../../lib/policy/types.ts';
import { GRPC_STATUS } from '../policy-engine/responses.ts';

/**
 * gRPC status vocabulary for a proxy that never sees the .proto: reading `grpc-status` from the
 * app's trailers, and translating what HTTP/2 itself reports (HTTP statuses, RST_STREAM codes)
 * into the status a gRPC client would have derived had it talked to the app directly.
 */

export { GRPC_STATUS };

/** `RESOURCE_EXHAUSTED` for 8; codes outside 0..16 are reported as they are. */
export function grpcCodeName(code: number): string {
  return GRPC_CODES[code] ?? String(code);
}

/**
 * The code in a `grpc-status` header. A missing or unparsable value is UNKNOWN, which is what
 * gRPC clients conclude from a status they cannot read.
 */
export function parseGrpcStatus(value: unknown): number {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2) return GRPC_STATUS.UNKNOWN;
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 ? n : GRPC_STATUS.UNKNOWN;
}

/** The gRPC spec's table for a response whose HTTP status is not 200 (http-grpc-status-mapping.md). */
export function grpcStatusFromHttp(status: number): number {
  switch (status) {
    case 400: return GRPC_STATUS.INTERNAL;
    case 401: return GRPC_STATUS.UNAUTHENTICATED;
    case 403: return GRPC_STATUS.PERMISSION_DENIED;
    case 404: return GRPC_STATUS.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504: return GRPC_STATUS.UNAVAILABLE;
    default: return GRPC_STATUS.UNKNOWN;
  }
}

/** What a gRPC client derives from an RST_STREAM it receives (PROTOCOL-HTTP2.md, "Errors"). */
export function grpcStatusFromRstCode(code: number): number {
  switch (code) {
    case h2.NGHTTP2_REFUSED_STREAM: return GRPC_STATUS.UNAVAILABLE; // the app never started the call: safe to retry
    case h2.NGHTTP2_CANCEL: return GRPC_STATUS.CANCELLED;
    case h2.NGHTTP2_ENHANCE_YOUR_CALM: return GRPC_STATUS.RESOURCE_EXHAUSTED;
    case h2.NGHTTP2_INADEQUATE_SECURITY: return GRPC_STATUS.PERMISSION_DENIED;
    default: return GRPC_STATUS.INTERNAL;
  }
}

/**
 * `grpc-message` is percent-encoded: bytes outside printable ASCII, and '%' itself, become %XX of
 * their UTF-8 bytes, so any text survives HTTP/2 header encoding.
 */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte < 0x20 || byte > 0x7e || byte === 0x25 ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte);
  }
  return out;
}
