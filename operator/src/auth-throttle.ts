import type { Clock } from '../../lib/clock.ts';

/**
 * How many TokenReviews one source (a peer address) may cause while it does not authenticate.
 * Every discovery Hello costs the operator a TokenReview on the API server before it knows who is
 * calling; without a bound, anyone who can reach the discovery port could make the operator flood
 * its API server. A token bucket per source: starting an authentication takes a token, one that
 * succeeds gives it back — so sidecars that authenticate are never held back, however often they
 * reconnect, while a source that keeps failing (or floods hellos in parallel) is refused before any
 * TokenReview, until its bucket refills. Pure: the clock is injected.
 */
export class AuthThrottle {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly burst: number;
  private readonly perSecond: number;
  private readonly maxSources: number;
  private readonly clock: Clock;

  constructor(opts: { clock: Clock; burst?: number; perSecond?: number; maxSources?: number }) {
    this.clock = opts.clock;
    this.burst = opts.burst ?? 20;
    this.perSecond = opts.perSecond ?? 2;
    this.maxSources = opts.maxSources ?? 10_000;
  }

  /** Whether `source` may start an authentication now; if so a token is taken. */
  take(source: string): boolean {
    const b = this.refill(source);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** The authentication succeeded: its token comes back. */
  refund(source: string): void {
    const b = this.buckets.get(source);
    if (b) b.tokens = Math.min(this.burst, b.tokens + 1);
  }

  /** Seconds until `source` has a token again (for the refusal's retry hint). */
  retryAfterSeconds(source: string): number {
    const b = this.refill(source);
    return b.tokens >= 1 ? 0 : Math.ceil((1 - b.tokens) / this.perSecond);
  }

  private refill(source: string): { tokens: number; at: number } {
    const now = this.clock.now();
    let b = this.buckets.get(source);
    if (b === undefined) {
      // Bounded memory: sources that are full again carry no information and go first.
      if (this.buckets.size >= this.maxSources) this.forgetFull(now);
      if (this.buckets.size >= this.maxSources) this.buckets.clear();
      b = { tokens: this.burst, at: now };
      this.buckets.set(source, b);
      return b;
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    return b;
  }

  private forgetFull(now: number): void {
    for (const [source, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(source);
    }
  }
}

/** "ipv4:10.1.2.3:51234" / "ipv6:[::1]:5000" / "10.1.2.3:5" → the address without the port. */
export function sourceOf(peer: string): string {
  const p = peer.replace(/^ipv[46]:/, '');
  if (p.startsWith('[')) return p.slice(0, p.indexOf(']') + 1);
  const i = p.lastIndexOf(':');
  return i > 0 && p.indexOf(':') === i ? p.slice(0, i) : p;
}
