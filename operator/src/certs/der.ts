/**
 * The handful of ASN.1 DER encoders an X.509 certificate needs. Node can sign and verify but not
 * build certificates, and the operator's image (node:24-slim) has no `openssl` binary, so the
 * operator encodes the few structures itself (see x509.ts). DER is deterministic: every value has
 * exactly one encoding, which is what makes a hand-built TBSCertificate signable.
 */

/** A tag-length-value with a definite length (DER forbids the indefinite form). */
export function tlv(tag: number, content: Uint8Array): Buffer {
  const len = content.length;
  let header: number[];
  if (len < 0x80) header = [tag, len];
  else {
    const bytes: number[] = [];
    for (let n = len; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
    header = [tag, 0x80 | bytes.length, ...bytes];
  }
  return Buffer.concat([Buffer.from(header), content]);
}

export const sequence = (...items: Uint8Array[]): Buffer => tlv(0x30, Buffer.concat(items));
export const set = (...items: Uint8Array[]): Buffer => tlv(0x31, Buffer.concat(items));
export const octetString = (b: Uint8Array): Buffer => tlv(0x04, b);
export const utf8String = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
export const boolean = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
export const nullValue = (): Buffer => Buffer.from([0x05, 0x00]);

/** [n] EXPLICIT: a constructed context tag wrapping a whole encoded value. */
export const explicit = (n: number, inner: Uint8Array): Buffer => tlv(0xa0 | n, inner);
/** [n] IMPLICIT for a primitive value (e.g. a dNSName inside GeneralNames). */
export const implicitPrimitive = (n: number, content: Uint8Array): Buffer => tlv(0x80 | n, content);

/** A non-negative INTEGER from big-endian magnitude bytes, in its minimal two's-complement form. */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  let body = Buffer.from(magnitude.subarray(i));
  if (body.length === 0) body = Buffer.from([0]);
  if ((body[0] as number) & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return tlv(0x02, body);
}

export const smallInteger = (n: number): Buffer => {
  if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) throw new RangeError(`smallInteger: ${n} out of range`);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return unsignedInteger(Uint8Array.from(bytes.length ? bytes : [0]));
};

/** A BIT STRING; `unusedBits` counts the padding bits at the end of the last byte. */
export const bitString = (bytes: Uint8Array, unusedBits = 0): Buffer => tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), bytes]));

/** An OBJECT IDENTIFIER from dotted text, base-128 encoded arc by arc. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => {
    const n = Number(a);
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`oid: bad arc "${a}" in ${dotted}`);
    return n;
  });
  if (arcs.length < 2) throw new RangeError(`oid: ${dotted} needs at least two arcs`);
  const out: number[] = [(arcs[0] as number) * 40 + (arcs[1] as number)];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Uint8Array.from(out));
}

/**
 * RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; both in UTC with seconds
 * and no fraction, which is the only form DER (and Go's crypto/x509 in the API server) accepts.
 */
export function time(d: Date): Buffer {
  if (Number.isNaN(d.getTime())) throw new RangeError('time: invalid date');
  const iso = d.toISOString(); // 2026-01-02T03:04:05.678Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, ''); // 20260102030405
  const year = d.getUTCFullYear();
  return year < 2050 ? tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'ascii')) : tlv(0x18, Buffer.from(`${digits}Z`, 'ascii'));
}

/** One element of a DER buffer: its tag and where its content and the whole element end. */
export interface DerElement {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

/** Reads the element at `offset` (definite lengths only, as DER requires). */
export function readElement(buf: Uint8Array, offset: number): DerElement {
  const tag = buf[offset];
  let lenByte = buf[offset + 1];
  if (tag === undefined || lenByte === undefined) throw new RangeError('DER: truncated element');
  let p = offset + 2;
  let len = lenByte;
  if (lenByte & 0x80) {
    const n = lenByte & 0x7f;
    if (n === 0 || n > 4) throw new RangeError('DER: unsupported length form');
    len = 0;
    for (let i = 0; i < n; i++) {
      lenByte = buf[p++];
      if (lenByte === undefined) throw new RangeError('DER: truncated length');
      len = len * 256 + lenByte;
    }
  }
  if (p + len > buf.length) throw new RangeError('DER: element overruns buffer');
  return { tag, start: offset, contentStart: p, end: p + len };
}

/** The children of a constructed element. */
export function children(buf: Uint8Array, parent: DerElement): DerElement[] {
  const out: DerElement[] = [];
  for (let p = parent.contentStart; p < parent.end; ) {
    const el = readElement(buf, p);
    out.push(el);
    p = el.end;
  }
  return out;
}

export function fromPem(pem: string): Buffer {
  const m = /-----BEGIN [A-Z ]+-----([\s\S]*?)-----END [A-Z ]+-----/.exec(pem);
  if (!m) throw new RangeError('not a PEM block');
  return Buffer.from((m[1] as string).replace(/\s+/g, ''), 'base64');
}

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
