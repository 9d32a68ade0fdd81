/**
 * One endpoint of an Upstream as the balancer and the outlier detector see it. Mutable on
 * purpose: it is the per-endpoint scoreboard every try updates; the decisions that read it live
 * in load-balancer.ts and outlier-detector.ts.
 */
export class Endpoint {
  readonly address: string;
  /** clock.now() when it joined the set: slow start ramps its share from here. */
  readonly addedAt: number;
  /** Tries in flight on it. */
  outstanding = 0;
  /** Latency (ms to the response headers), exponentially weighted; undefined until a first answer. */
  ewmaMs: number | undefined;
  /** Failures in a row, for outlier detection. */
  consecutiveFailures = 0;
  /** clock.now() until which it gets no traffic (0: not ejected). */
  ejectedUntil = 0;
  /** How many times it was ejected recently: each ejection lasts base × this; forgiven one per interval. */
  ejections = 0;
  /** clock.now() when the ejection count last stepped down (or the endpoint was last ejected). */
  lastDecayAt = 0;

  constructor(address: string, addedAt: number) {
    this.address = address;
    this.addedAt = addedAt;
  }

  isEjected(now: number): boolean {
    return this.ejectedUntil > now;
  }
}

/** How much a new latency sample weighs against the history. */
export const EWMA_ALPHA = 0.3;

export function recordLatency(ep: Endpoint, ms: number): void {
  ep.ewmaMs = ep.ewmaMs === undefined ? ms : ep.ewmaMs + EWMA_ALPHA * (ms - ep.ewmaMs);
}
