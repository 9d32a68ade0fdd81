/**
 * Redis could not answer in time (down, unreachable, paused, or slower than the command timeout).
 * Callers never see ioredis' own errors: they see this, with a stable code, and decide what their
 * failure mode says (fall back, reject, step down).
 */
export class RedisUnavailableError extends Error {
  readonly code = 'SLUICE_ERR_REDIS_UNAVAILABLE';
  /** Which connection (its name, never its URL). */
  readonly redis: string;

  constructor(redis: string, cause: unknown) {
    super(`redis ${redis} unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'RedisUnavailableError';
    this.redis = redis;
  }
}
