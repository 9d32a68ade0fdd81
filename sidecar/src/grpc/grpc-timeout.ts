/**
 * The `grpc-timeout` header: at most 8 ASCII digits and a unit (H M S m u n), per
 * PROTOCOL-HTTP2.md. The proxy enforces the tighter of the client's deadline and the breaker's
 * call timeout, and passes what is left on to the app so it can stop work nobody will wait for.
 */

const UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };
const TIMEOUT_RE = /^(\d{1,8})([HMSmun])$/;

/** Milliseconds, or undefined when the value does not follow the grammar. */
export function parseGrpcTimeout(value: string): number | undefined {
  const m = TIMEOUT_RE.exec(value);
  if (!m) return undefined;
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}

const MAX_DIGITS = 99_999_999;

/**
 * Formats a remaining time, rounded down so the app's deadline never outlives the proxy's; the
 * finest unit that fits in 8 digits keeps short deadlines precise. Zero or less becomes `0n`
 * (already expired) rather than a negative number, which the grammar does not allow.
 */
export function formatGrpcTimeout(ms: number): string {
  if (!(ms > 0)) return '0n';
  if (ms * 1e3 <= MAX_DIGITS) return `${Math.floor(ms * 1e3)}u`;
  if (ms <= MAX_DIGITS) return `${Math.floor(ms)}m`;
  if (ms / 1e3 <= MAX_DIGITS) return `${Math.floor(ms / 1e3)}S`;
  if (ms / 6e4 <= MAX_DIGITS) return `${Math.floor(ms / 6e4)}M`;
  return `${Math.min(MAX_DIGITS, Math.floor(ms / 3.6e6))}H`;
}

/** Which limit bounds a call: the client's own deadline, or the breaker's call timeout. */
export interface CallDeadline {
  readonly ms: number;
  /** 'breaker' means expiry is a breaker failure (timedOut); 'client' is the caller's choice. */
  readonly bound: 'client' | 'breaker';
}

export function callDeadline(clientMs: number | undefined, breakerMs: number | undefined): CallDeadline | undefined {
  if (breakerMs !== undefined && (clientMs === undefined || breakerMs < clientMs)) return { ms: breakerMs, bound: 'breaker' };
  if (clientMs !== undefined) return { ms: clientMs, bound: 'client' };
  return undefined;
}
