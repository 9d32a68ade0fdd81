import { Redis, type RedisOptions } from 'ioredis';

export interface RedisConnectOptions {
  url: string;
  /** Name used in logs and metrics (never the URL: it may carry a password). */
  name: string;
  /** Every command fails after this long instead of waiting on a slow or dead server. */
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  /**
   * Send the commands issued in one event-loop turn as one write (ioredis auto-pipelining): many
   * concurrent decisions or lock rounds then cost one syscall instead of one each.
   */
  autoPipelining?: boolean;
}

/**
 * An ioredis client set up for a sidecar that must survive Redis: commands time out, nothing is
 * queued while disconnected (callers get an error at once and fall back), and reconnects back off
 * exponentially with jitter up to 2 s, forever.
 */
export function connectRedis(opts: RedisConnectOptions): Redis {
  const options: RedisOptions = {
    connectionName: `sluice:${opts.name}`,
    commandTimeout: opts.commandTimeoutMs ?? 500,
    connectTimeout: opts.connectTimeoutMs ?? 1_000,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    lazyConnect: false,
    retryStrategy: (attempt) => Math.min(2_000, 50 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2),
    reconnectOnError: () => false,
    enableAutoPipelining: opts.autoPipelining ?? false,
  };
  const client = new Redis(opts.url, options);
  // An 'error' event without a listener would crash the process; the health tracker reports it.
  client.on('error', () => {});
  return client;
}

// Health and URL redaction live apart so that code needing them does not load ioredis.
export { RedisHealth, redactUrl, type RedisState } from './redis-health.ts';

/**
 * Resolves once the client is ready, rejects after `timeoutMs`. With no offline queue a command
 * sent before the connection is up fails at once; startup code and tests wait with this first.
 */
export function waitReady(client: Redis, timeoutMs = 5_000): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(Object.assign(new Error(`redis not ready after ${timeoutMs} ms`), { code: 'SLUICE_ERR_REDIS_UNAVAILABLE' }));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}
