/**
 * Issues the webhook's certificates: a self-signed CA and a serving certificate signed by it, both
 * ECDSA P-256 with SHA-256 (small, fast, accepted by every Kubernetes API server).
 *
 * Why not `openssl`? It is not in the node:24-slim runtime image, and shelling out at runtime
 * would add a binary to keep patched. Node's `crypto` signs; der.ts encodes the TBSCertificate
 * (RFC 5280) around it. Tests check the result with Node's X509Certificate, a real TLS handshake
 * and — where present — `openssl verify`.
 */
import { isIP, isIPv4 } from 'node:net';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import {
  bitString, boolean, children, explicit, fromPem, implicitPrimitive, octetString, oid, readElement, sequence, set, smallInteger, time, toPem, unsignedInteger, utf8String,
} from './der.ts';

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

export interface KeyAndCert {
  certPem: string;
  keyPem: string;
}

export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

const ORGANIZATION = 'sluice.dev';

function name(commonName: string): Buffer {
  const rdn = (type: string, value: string) => set(sequence(oid(type), utf8String(value)));
  return sequence(rdn(OID.organization, ORGANIZATION), rdn(OID.commonName, commonName));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  // DER omits a BOOLEAN that equals its DEFAULT (critical FALSE).
  return critical ? sequence(oid(id), boolean(true), octetString(value)) : sequence(oid(id), octetString(value));
}

/** RFC 7093 method 1: the leftmost 160 bits of SHA-256 over the subjectPublicKey bits. */
function keyIdentifier(spki: Buffer): Buffer {
  // A P-256 SPKI ends with the 65-byte uncompressed point, which is the subjectPublicKey content.
  return createHash('sha256').update(spki.subarray(spki.length - 65)).digest().subarray(0, 20);
}

/** The 4 or 16 bytes of an IP literal, as an iPAddress subjectAltName carries them. */
function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  const [head = '', tail = ''] = ip.split('::');
  const groups = (part: string) => (part ? part.split(':') : []);
  const h = groups(head);
  const t = ip.includes('::') ? groups(tail) : [];
  const all = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.concat(all.map((g) => Buffer.from([parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff])));
}

/** A name as X509Certificate.subjectAltName prints it back (IPv6 uncompressed), for comparisons. */
export function sanForm(name: string): string {
  if (isIP(name) !== 6) return name;
  const b = ipBytes(name);
  return Array.from({ length: 8 }, (_, i) => ((b[2 * i]! << 8) | b[2 * i + 1]!).toString(16)).join(':');
}

function newKey(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

interface IssueOptions extends Validity {
  subject: string;
  subjectKey: KeyObject;
  /** The issuer's subject Name exactly as encoded in its certificate, its key and SPKI. */
  issuer: { name: Buffer; key: KeyObject; spki: Buffer };
  ca: boolean;
  dnsNames?: readonly string[];
}

function issue(o: IssueOptions): string {
  if (!(o.notAfter > o.notBefore)) throw new RangeError('certificate notAfter must be after notBefore');
  const spki = o.subjectKey.export({ type: 'spki', format: 'der' });
  const serial = randomBytes(16);
  serial[0] = ((serial[0] as number) & 0x7f) | 0x40; // positive, 16 bytes, never a leading zero
  const sigAlg = sequence(oid(OID.ecdsaWithSha256));
  const exts: Buffer[] = [
    // CA: may sign leaf certificates only (pathLen 0). Leaf: not a CA.
    extension(OID.basicConstraints, true, o.ca ? sequence(boolean(true), smallInteger(0)) : sequence()),
    // CA: digitalSignature + keyCertSign + cRLSign (bits 0, 5, 6). Leaf: digitalSignature (ECDHE).
    extension(OID.keyUsage, true, o.ca ? bitString(Buffer.from([0x86]), 1) : bitString(Buffer.from([0x80]), 7)),
    extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(spki))),
  ];
  if (!o.ca) {
    exts.push(extension(OID.authorityKeyIdentifier, false, sequence(implicitPrimitive(0, keyIdentifier(o.issuer.spki)))));
    exts.push(extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth))));
    const dns = o.dnsNames ?? [];
    if (dns.length === 0) throw new RangeError('a serving certificate needs at least one DNS name');
    // An IP literal becomes an iPAddress name (a webhook reached by URL at an address, not a
    // Service name, is verified against it); anything else a dNSName.
    exts.push(extension(OID.subjectAltName, false, sequence(...dns.map((d) => (isIP(d) ? implicitPrimitive(7, ipBytes(d)) : implicitPrimitive(2, Buffer.from(d, 'ascii')))))));
  }
  const tbs = sequence(
    explicit(0, smallInteger(2)), // v3
    unsignedInteger(serial),
    sigAlg,
    o.issuer.name,
    sequence(time(o.notBefore), time(o.notAfter)),
    name(o.subject),
    spki,
    explicit(3, sequence(...exts)),
  );
  const signature = sign('sha256', tbs, { key: o.issuer.key, dsaEncoding: 'der' });
  return toPem('CERTIFICATE', sequence(tbs, sigAlg, bitString(signature)));
}

/**
 * The subject Name of a certificate, byte for byte: a leaf's issuer must equal its CA's subject
 * exactly, so it is copied rather than re-encoded.
 */
export function subjectName(certPem: string): Buffer {
  const der = fromPem(certPem);
  const tbs = children(der, readElement(der, 0))[0];
  if (!tbs) throw new RangeError('certificate has no TBSCertificate');
  const fields = children(der, tbs);
  // version [0], serialNumber, signature, issuer, validity, subject
  const subject = fields[(fields[0]?.tag === 0xa0 ? 1 : 0) + 4];
  if (!subject) throw new RangeError('certificate has no subject');
  return Buffer.from(der.subarray(subject.start, subject.end));
}

/** A new self-signed CA that may only sign end-entity certificates. */
export function createCa(commonName: string, validity: Validity): KeyAndCert {
  const { privateKey, publicKey } = newKey();
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const certPem = issue({ ...validity, subject: commonName, subjectKey: publicKey, issuer: { name: name(commonName), key: privateKey, spki }, ca: true });
  return { certPem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

/** A serving certificate for `dnsNames` (the first is also the CN), signed by `ca`. */
export function createServingCert(ca: KeyAndCert, dnsNames: readonly string[], validity: Validity): KeyAndCert {
  const { privateKey, publicKey } = newKey();
  const caKey = createPrivateKey(ca.keyPem);
  const caSpki = createPublicKey(caKey).export({ type: 'spki', format: 'der' });
  const certPem = issue({
    ...validity, subject: dnsNames[0] ?? 'sluice-webhook', subjectKey: publicKey, dnsNames,
    issuer: { name: subjectName(ca.certPem), key: caKey, spki: caSpki }, ca: false,
  });
  return { certPem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}
