import { describe, expect, it } from 'vitest';
import { classifyPreface, HTTP2_PREFACE } from '../../src/grpc/connection-preface.ts';

describe('classifyPreface', () => {
  it('recognises the HTTP/2 preface, asking for more while it is incomplete', () => {
    for (let n = 1; n < HTTP2_PREFACE.length; n++) expect(classifyPreface(HTTP2_PREFACE.subarray(0, n))).toBe('need-more');
    expect(classifyPreface(HTTP2_PREFACE)).toBe('h2');
    expect(classifyPreface(Buffer.concat([HTTP2_PREFACE, Buffer.from([0, 0, 0, 4])]))).toBe('h2');
  });

  it('recognises HTTP/1 request lines, including PRI that is not the preface', () => {
    for (const line of ['GET / HTTP/1.1\r\n', 'POST /x HTTP/1.0', 'OPTIONS * HTTP/1.1', 'PRI /x HTTP/1.1']) expect(classifyPreface(Buffer.from(line))).toBe('http1');
    expect(classifyPreface(Buffer.from('GE'))).toBe('need-more');
  });

  it('calls anything else garbage', () => {
    for (const bytes of [[0x16, 0x03, 0x01], [0x20], [0x00], Array.from(Buffer.from('get / HTTP/1.1')), Array.from(Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZ'))]) {
      expect(classifyPreface(Buffer.from(bytes))).toBe('garbage');
    }
  });
});
