import type { Protocol, RouteMatch } from './types.ts';

/** What the matchers look at, the same for HTTP, WebSocket upgrades and gRPC calls. */
export interface RequestAttributes {
  protocol: Protocol;
  method: string;
  /** The URL path without the query string. */
  path: string;
  /** `pkg.Service/Method` for gRPC calls. */
  grpcMethod?: string;
  /** Header or gRPC metadata value by lower-case name. */
  header(name: string): string | undefined;
  /** Outbound calls only: the Upstream (`namespace/name`) the app called through. */
  upstream?: string;
}

export type Matcher = (req: RequestAttributes) => boolean;

/** A rule that names no upstream is about traffic coming in, never the app's own calls out. */
const inboundOnly: Matcher = (r) => r.upstream === undefined;

/**
 * Builds the matcher for a rule once, at compile time, so the request path runs a prebuilt
 * closure and never re-reads the spec. Every given condition must hold; an empty match selects
 * all traffic. Paths and header regular expressions match whole values (anchored), as in the
 * Gateway API; a Prefix matches at a segment boundary (`/api` matches `/api` and `/api/x`, not
 * `/apix`).
 */
export function compileMatch(match: RouteMatch | undefined, namespace = 'default'): Matcher {
  if (!match) return inboundOnly;
  const tests: Matcher[] = [];
  if (match.upstream !== undefined) {
    const id = `${namespace}/${match.upstream}`;
    tests.push((r) => r.upstream === id);
  } else tests.push(inboundOnly);
  if (match.protocol) {
    const protocol = match.protocol;
    tests.push((r) => r.protocol === protocol);
  }
  if (match.methods?.length) {
    const methods = new Set(match.methods);
    tests.push((r) => methods.has(r.method));
  }
  if (match.paths?.length) {
    const pathTests = match.paths.map((p): ((path: string) => boolean) => {
      if (p.type === 'Exact') return (path) => path === p.value;
      if (p.type === 'RegularExpression') {
        const re = new RegExp(`^(?:${p.value})$`);
        return (path) => re.test(path);
      }
      const prefix = p.value.length > 1 && p.value.endsWith('/') ? p.value.slice(0, -1) : p.value;
      if (prefix === '/') return () => true; // every path
      return (path) => path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47);
    });
    tests.push((r) => pathTests.some((t) => t(r.path)));
  }
  if (match.grpcMethods?.length) {
    const exact = new Set<string>();
    const services = new Set<string>();
    for (const m of match.grpcMethods) {
      if (m.endsWith('/*')) services.add(m.slice(0, -2));
      else exact.add(m);
    }
    tests.push((r) => {
      const m = r.grpcMethod;
      if (m === undefined) return false;
      if (exact.has(m)) return true;
      const slash = m.indexOf('/');
      return slash > 0 && services.has(m.slice(0, slash));
    });
  }
  for (const h of match.headers ?? []) {
    const name = h.name.toLowerCase();
    if (h.type === 'Present') tests.push((r) => r.header(name) !== undefined);
    else if (h.type === 'RegularExpression') {
      const re = new RegExp(`^(?:${h.value ?? ''})$`);
      tests.push((r) => {
        const v = r.header(name);
        return v !== undefined && re.test(v);
      });
    } else {
      const value = h.value;
      tests.push((r) => r.header(name) === value);
    }
  }
  if (tests.length === 1) return tests[0] as Matcher;
  return (r) => {
    for (const t of tests) if (!t(r)) return false;
    return true;
  };
}
