import type { Clock } from '../../../lib/clock.ts';
import type { Limiter } from '../../src/limit/limiter.ts';

/**
 * Offers load to a limiter for `durationMs`: `perTick` decisions per event-loop turn, so that
 * Redis replies (and timers) still get their turn between bursts, as in a real sidecar.
 */
export async function drive(limiter: Limiter, clock: Clock, durationMs: number, { perTick = 50, key = 'k' } = {}): Promise<{ allowed: number; denied: number }> {
  const end = clock.now() + durationMs;
  let allowed = 0;
  let denied = 0;
  while (clock.now() < end) {
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < perTick; i++) {
      const d = limiter.consume(key, clock.now());
      if (d instanceof Promise) {
        pending.push(d.then((x) => (x.allowed ? allowed++ : denied++)));
      } else if (d.allowed) allowed++;
      else denied++;
    }
    if (pending.length > 0) await Promise.all(pending);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return { allowed, denied };
}
