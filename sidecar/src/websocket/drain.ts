import type { Clock } from '../../../lib/clock.ts';

/**
 * Staggered drain: on shutdown, WebSocket clients are closed with 1012 (service restart) one by
 * one over a window instead of all at once. Clients reconnect when they are closed; closing ten
 * thousand of them in the same millisecond sends ten thousand handshakes (TLS, auth, the app's
 * session set-up) to the remaining pods at once. Spread evenly over the window, the reconnects
 * arrive at n / window per second.
 */

/** The part of the grace period the closes are spread over: at most three quarters of it, so the last clients still finish their close handshake before the grace ends. */
export function drainWindowMs(configuredMs: number, graceMs: number): number {
  return Math.max(0, Math.min(configuredMs, graceMs * 0.75));
}

/** When (ms after the drain starts) the i-th of n connections is closed: evenly over the window, the first at once. */
export function drainOffsetMs(i: number, n: number, windowMs: number): number {
  return n <= 1 ? 0 : (i * windowMs) / n;
}

/**
 * Closes `items` at their offsets with one timer at a time (not one per connection), closing
 * every item that is due at each wake-up. Resolves when the last close has been issued.
 */
export function staggeredDrain<T>(items: readonly T[], windowMs: number, close: (item: T) => void, clock: Clock): Promise<void> {
  const n = items.length;
  if (n === 0) return Promise.resolve();
  const start = clock.now();
  let next = 0;
  return new Promise((resolve) => {
    const step = () => {
      const elapsed = clock.now() - start;
      while (next < n && drainOffsetMs(next, n, windowMs) <= elapsed) close(items[next++] as T);
      if (next >= n) return resolve();
      setTimeout(step, Math.max(1, drainOffsetMs(next, n, windowMs) - elapsed));
    };
    step();
  });
}
