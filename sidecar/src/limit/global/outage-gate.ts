/**
 * Remembers that Redis just failed so that the next decisions go to the failure mode at once
 * instead of each waiting out the command timeout (a SIGSTOPped or black-holed server accepts the
 * connection and never answers). While down, one probe per `probeEveryMs` goes through; its
 * success reopens the way for everyone.
 */
export class OutageGate {
  private readonly probeEveryMs: number;
  private nextProbeAt = 0;
  private isDown = false;

  constructor(probeEveryMs: number) {
    if (!(probeEveryMs > 0)) throw new RangeError('OutageGate: probeEveryMs must be > 0');
    this.probeEveryMs = probeEveryMs;
  }

  get down(): boolean {
    return this.isDown;
  }

  /** Whether a call to Redis may be made now; while down, true once per probe interval. */
  allows(now: number): boolean {
    if (!this.isDown) return true;
    if (now < this.nextProbeAt) return false;
    this.nextProbeAt = now + this.probeEveryMs;
    return true;
  }

  /** Milliseconds until the next probe (what a Closed rule tells clients in Retry-After). */
  retryAfterMs(now: number): number {
    return this.isDown ? Math.max(0, Math.ceil(this.nextProbeAt - now)) : 0;
  }

  succeeded(): void {
    this.isDown = false;
  }

  failed(now: number): void {
    this.isDown = true;
    this.nextProbeAt = now + this.probeEveryMs;
  }
}
