/**
 * What to do with `%2F` / `%5C` (and a raw `\`) in a path, as Envoy's
 * `path_with_escaped_slashes_action`:
 * - `reject`: answer 400. The default: frameworks disagree on whether `/api%2Fadmin` is one
 *   segment or two (Tomcat, Spring Security and Apache httpd refuse it by default, Go's
 *   `URL.Path` and some routers decode it), so the only reading that is safe for every app behind
 *   the sidecar is none. An app that really uses escaped slashes opts in with `keep`.
 * - `unescape`: decode them to `/` (a backslash too: some servers treat it as a separator) and
 *   normalise the result, so matching, keying and the app all see one path.
 * - `keep`: leave them escaped; matching and keying then see them as part of a segment, which is
 *   right only for an app that does the same.
 */
export type EscapedSlashAction = 'reject' | 'unescape' | 'keep';

export const ESCAPED_SLASH_ACTIONS: readonly EscapedSlashAction[] = ['reject', 'unescape', 'keep'];

export type TargetError = 'SLUICE_ERR_REQUEST_TARGET' | 'SLUICE_ERR_PATH_ENCODING' | 'SLUICE_ERR_PATH_ESCAPED_SLASH';

/** A request-target in origin form: `path` normalised, `query` as sent (with its `?`, or ''). */
export interface NormalisedTarget {
  readonly path: string;
  readonly query: string;
}


/**
 * Turns a request-target into the one path that rate limits and breakers match and key on and
 * the app receives (RFC 3986 §6.2.2): absolute form to origin form, percent-encoded unreserved
 * characters decoded (other escapes upper-cased), repeated slashes merged, dot-segments removed.
 * Pure, and a no-op (no allocation beyond the query split) for the common clean path.
 */
export function normaliseTarget(target: string, escapedSlashes: EscapedSlashAction): NormalisedTarget | { readonly error: TargetError } {
  let rest = target;
  if (rest.charCodeAt(0) !== 47 /* / */) {
    // Absolute form (RFC 9112 §3.2.2): a proxy-style request; only the path goes to the app.
    const m = /^https?:\/\/[^/?#]*/i.exec(rest);
    if (!m) return { error: 'SLUICE_ERR_REQUEST_TARGET' }; // `*`, authority form, garbage
    rest = rest.slice(m[0].length);
    if (rest.charCodeAt(0) !== 47) rest = `/${rest}`;
  }
  const q = rest.indexOf('?');
  const rawPath = q === -1 ? rest : rest.slice(0, q);
  const query = q === -1 ? '' : rest.slice(q);
  const scan = scanPath(rawPath);
  if (scan === FRAGMENT) return { error: 'SLUICE_ERR_REQUEST_TARGET' };
  if (scan === CLEAN) return { path: rawPath.length === 0 ? '/' : rawPath, query };
  const decoded = decodeUnreserved(rawPath, escapedSlashes);
  if (typeof decoded !== 'string') return decoded;
  return { path: removeDotSegments(decoded), query };
}

const CLEAN = 0;
const NEEDS_WORK = 1;
const FRAGMENT = 2;

/** One pass: a fragment (refused), or anything the slow path could change — `%`, `\`, `/.`, `//`. */
function scanPath(path: string): number {
  let result = CLEAN;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 35 /* # */) return FRAGMENT;
    if (c === 37 /* % */ || c === 92 /* \ */) result = NEEDS_WORK;
    else if (c === 47 /* / */) {
      const next = path.charCodeAt(i + 1);
      if (next === 46 /* . */ || next === 47) result = NEEDS_WORK;
    }
  }
  return result;
}

function decodeUnreserved(path: string, escapedSlashes: EscapedSlashAction): string | { readonly error: TargetError } {
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 92 /* \ */) {
      if (escapedSlashes === 'reject') return { error: 'SLUICE_ERR_PATH_ESCAPED_SLASH' };
      out += escapedSlashes === 'unescape' ? '/' : '\\';
      continue;
    }
    if (c !== 37 /* % */) {
      out += path[i];
      continue;
    }
    const hi = hexValue(path.charCodeAt(i + 1));
    const lo = hexValue(path.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return { error: 'SLUICE_ERR_PATH_ENCODING' };
    const byte = hi * 16 + lo;
    i += 2;
    if (isUnreserved(byte)) out += String.fromCharCode(byte);
    else if (byte === 0x2f || byte === 0x5c) {
      if (escapedSlashes === 'reject') return { error: 'SLUICE_ERR_PATH_ESCAPED_SLASH' };
      out += escapedSlashes === 'unescape' ? '/' : byte === 0x2f ? '%2F' : '%5C';
    } else out += `%${HEX[hi]}${HEX[lo]}`;
  }
  return out;
}

/** RFC 3986 §5.2.4, with empty segments merged: `/a//b/./c/../d/` → `/a/b/d/`; never above `/`. */
function removeDotSegments(path: string): string {
  const segments = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i] as string;
    if (s === '' || s === '.') continue;
    if (s === '..') out.pop();
    else out.push(s);
  }
  const last = segments[segments.length - 1];
  const trailingSlash = out.length > 0 && (last === '' || last === '.' || last === '..');
  return `/${out.join('/')}${trailingSlash ? '/' : ''}`;
}

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986 §2.3): their escapes mean the same character. */
function isUnreserved(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;
}
