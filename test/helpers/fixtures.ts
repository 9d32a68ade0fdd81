import { afterAll, afterEach, beforeAll } from 'vitest';
import { RedisServer } from './redis-server.ts';

/**
 * One real redis-server for the test file: started before its first test, stopped after its
 * last. `onStart` receives it (tests keep it in a variable to kill or restart it) and may return
 * a teardown that runs before the server stops, e.g. to close a client.
 */
export function useRedisServer(onStart: (server: RedisServer) => void | (() => void), opts?: { appendonly?: boolean }): void {
  let server: RedisServer | undefined;
  let teardown: (() => void) | undefined;
  beforeAll(async () => {
    server = await RedisServer.start(opts);
    teardown = onStart(server) ?? undefined;
  });
  afterAll(async () => {
    teardown?.();
    await server?.stop();
  });
}

/**
 * What each test started (apps, sidecars, harnesses), stopped after the test in reverse order
 * whether it passed or not; a stop that fails does not hide the test's own result.
 */
export function useCleanup(): (() => Promise<unknown> | unknown)[] {
  const stops: (() => Promise<unknown> | unknown)[] = [];
  afterEach(async () => {
    while (stops.length) await Promise.resolve().then(stops.pop()!).catch(() => {});
  });
  return stops;
}
