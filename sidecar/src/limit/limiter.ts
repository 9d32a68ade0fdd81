/**
 * What every rate limiter answers for one request: the Local ones (TokenBucket, SlidingWindow)
 * synchronously, the Global ones (Redis) as a promise. The numbers feed the 429 headers:
 * `Retry-After`, `RateLimit-Policy` and `RateLimit` (IETF draft-ietf-httpapi-ratelimit-headers).
 */
export interface Decision {
  readonly allowed: boolean;
  /** The quota this decision was made against (requests per window / bucket capacity). */
  readonly limit: number;
  /** Requests still admissible right now (≥ 0). */
  readonly remaining: number;
  /** Milliseconds until the quota is fully restored (window reset / bucket full). */
  readonly resetMs: number;
  /** Milliseconds until one more request would be admitted; 0 when allowed. */
  readonly retryAfterMs: number;
  /** Refused only to keep a higher priority level's reserve (the request itself would fit). */
  readonly reserved?: boolean;
}

export interface Limiter {
  /**
   * Takes one request from the partition `key`; `now` is the injected monotonic clock in ms.
   * `reserve` (priority shedding): how much of the quota must remain after this request; a
   * limiter that cannot honour it exactly (Global) lets the engine judge from `remaining`.
   */
  consume(key: string, now: number, reserve?: number): Decision | Promise<Decision>;
}
