import { constants as h2 } from 'node:http2';
import { describe, expect, it } from 'vitest';
import { encodeGrpcMessage, grpcCodeName, grpcStatusFromHttp, grpcStatusFromRstCode, parseGrpcStatus } from '../../src/grpc/grpc-status.ts';

describe('gRPC status mapping', () => {
  it('names codes', () => {
    expect(grpcCodeName(0)).toBe('OK');
    expect(grpcCodeName(8)).toBe('RESOURCE_EXHAUSTED');
    expect(grpcCodeName(14)).toBe('UNAVAILABLE');
    expect(grpcCodeName(99)).toBe('99');
  });

  it('reads grpc-status, treating anything unreadable as UNKNOWN', () => {
    expect(parseGrpcStatus('0')).toBe(0);
    expect(parseGrpcStatus('14')).toBe(14);
    for (const bad of [undefined, '', 'x', '-1', '1.5', '123', ['0']]) expect(parseGrpcStatus(bad)).toBe(2);
  });

  it('maps HTTP statuses per the gRPC spec', () => {
    expect([400, 401, 403, 404, 429, 502, 503, 504, 500, 418].map(grpcStatusFromHttp)).toEqual([13, 16, 7, 12, 14, 14, 14, 14, 2, 2]);
  });

  it('maps RST_STREAM codes the way gRPC clients do', () => {
    expect(grpcStatusFromRstCode(h2.NGHTTP2_REFUSED_STREAM)).toBe(14);
    expect(grpcStatusFromRstCode(h2.NGHTTP2_CANCEL)).toBe(1);
    expect(grpcStatusFromRstCode(h2.NGHTTP2_ENHANCE_YOUR_CALM)).toBe(8);
    expect(grpcStatusFromRstCode(h2.NGHTTP2_PROTOCOL_ERROR)).toBe(13);
  });

  it('percent-encodes grpc-message outside printable ASCII, and % itself', () => {
    expect(encodeGrpcMessage('plain text (ok)')).toBe('plain text (ok)');
    expect(encodeGrpcMessage('50% off')).toBe('50%25 off');
    expect(encodeGrpcMessage('línea\n')).toBe('l%C3%ADnea%0A');
    expect(decodeURIComponent(encodeGrpcMessage('ünïcödé ✓'))).toBe('ünïcödé ✓');
  });
});
