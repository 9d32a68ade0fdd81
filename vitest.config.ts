import { defineConfig } from 'vitest/config';

// Integration tests start real redis-server processes, sockets and child sidecars, so they get
// generous timeouts; the machine has two cores, so files run two at a time.
export default defineConfig({
  test: {
    include: ['lib/**/*.test.ts', 'sidecar/test/**/*.test.ts', 'operator/test/**/*.test.ts', 'test/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    fileParallelism: true,
  },
});
