import type { Redis } from 'ioredis';

/**
 * Resolves when the client is connected, or after `timeoutMs` regardless: callers go on and meet
 * the error of the next command (the connections queue nothing while disconnected), which their
 * retry loops already handle. This only spares a start-up from failing its first commands.
 */
export function whenReady(client: Redis, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    client.on('ready', done);
  });
}
