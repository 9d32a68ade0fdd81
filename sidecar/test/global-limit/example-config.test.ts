import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from '../../../test/helpers/redis-server.ts';
import { spawnSidecar, type SidecarProcess } from '../../../test/helpers/sidecar-process.ts';
import { startUserService, userServiceClient, type UserServiceClient } from '../../../examples/user-service/user-service.ts';
import { defaultMaxBatch, lowWater } from '../../src/limit/global/lease.ts';
import { connectRedis, waitReady } from '../../../lib/redis/connection.ts';

/*
 * The Global rule of the shared API examples as written: `get-user-rpc` (5000 GetUser calls per
 * sliding minute, scope Global, failureMode Open) enforced across two real sluice-proxy processes
 * started with `--config examples.yaml --labels app=user-service --redis`, in front of the example
 * UserService, called with grpc-js clients through `--listen-grpc`.
 */
const EXAMPLES = fileURLToPath(new URL('../../../examples/policies.yaml', import.meta.url));
const LIMIT = 5_000;
const RULE = 'shop/user-api/get-user-rpc';

let redis: RedisServer;
let app: Awaited<ReturnType<typeof startUserService>>;
let sidecars: SidecarProcess[] = [];
let clients: UserServiceClient[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
  app = await startUserService();
  sidecars = await Promise.all(['a', 'b'].map((id) => spawnSidecar([
    '--config', EXAMPLES, '--labels', 'app=user-service', '--app-grpc', `127.0.0.1:${app.port}`, '--redis', redis.url, '--id', `user-service-${id}`, '--log-level', 'warn',
  ])));
  clients = sidecars.map((s) => userServiceClient(`127.0.0.1:${s.ports.grpc}`));
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of sidecars) {
    s.kill('SIGTERM');
    await s.exited;
  }
  await app?.close();
  await redis?.stop();
});

function getUser(client: UserServiceClient, id: string): Promise<grpc.status> {
  return new Promise((resolve) => client.GetUser({ id }, {}, (err) => resolve(err ? err.code : grpc.status.OK)));
}

/** `calls` GetUser calls through `client`, `concurrency` at a time; counts by status code. */
async function callMany(client: UserServiceClient, calls: number, concurrency = 25): Promise<Map<grpc.status, number>> {
  const counts = new Map<grpc.status, number>();
  let sent = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (sent < calls) {
      const code = await getUser(client, String(++sent % 100));
      counts.set(code, (counts.get(code) ?? 0) + 1);
    }
  }));
  return counts;
}

describe('examples.yaml get-user-rpc across two sidecars sharing Redis', () => {
  it('shows the Global rule as enforced: /config no longer warns about scope Global', async () => {
    for (const s of sidecars) {
      const config = (await (await fetch(`${s.admin}/config`)).json()) as { rules: { rateLimits: string[] }; warnings: string[] };
      expect(config.rules.rateLimits).toContain(RULE);
      expect(config.warnings.filter((w) => w.includes('get-user-rpc') || /global/i.test(w))).toEqual([]);
    }
  });

  it('warns, by contrast, when the same file runs without --redis', async () => {
    const alone = await spawnSidecar(['--config', EXAMPLES, '--labels', 'app=user-service', '--app-grpc', `127.0.0.1:${app.port}`, '--log-level', 'error']);
    try {
      const config = (await (await fetch(`${alone.admin}/config`)).json()) as { warnings: string[] };
      expect(config.warnings.some((w) => w.includes(RULE) && /Global/.test(w))).toBe(true);
    } finally {
      alone.kill('SIGTERM');
      await alone.exited;
    }
  });

  it('admits 5000 GetUser calls per minute in total, whichever sidecar takes them', async () => {
    const started = performance.now();
    const [a, b] = (await Promise.all(clients.map((c) => callMany(c, 3_000)))) as [Map<grpc.status, number>, Map<grpc.status, number>];
    const elapsedMin = (performance.now() - started) / 60_000;
    const ok = (m: Map<grpc.status, number>) => m.get(grpc.status.OK) ?? 0;
    const exhausted = (m: Map<grpc.status, number>) => m.get(grpc.status.RESOURCE_EXHAUSTED) ?? 0;
    // Every call either passed or was refused by the limit: nothing else.
    expect(ok(a) + exhausted(a)).toBe(3_000);
    expect(ok(b) + exhausted(b)).toBe(3_000);
    // The lease bound (lease.ts): each sidecar holds at most maxBatch + lowWater unspent tokens.
    // The window slides: if a minute boundary fell inside the run, the previous minute's count
    // fades out and up to LIMIT × (elapsed / 1 min) more become admissible.
    const maxBatch = defaultMaxBatch(LIMIT);
    const held = maxBatch + lowWater({ maxBatch, leaseMs: 0, horizonMs: 0 });
    const total = ok(a) + ok(b);
    expect(total).toBeGreaterThanOrEqual(LIMIT - 2 * held);
    expect(total).toBeLessThanOrEqual(Math.ceil(LIMIT * (1 + elapsedMin)) + 2 * held);
    expect(ok(a)).toBeGreaterThan(LIMIT / 4);
    expect(ok(b)).toBeGreaterThan(LIMIT / 4);
    // Counted in Redis under the rule's key, not in either sidecar alone.
    const inspect = connectRedis({ url: redis.url, name: 'test-inspect', commandTimeoutMs: 2_000 });
    try {
      await waitReady(inspect);
      expect(await inspect.hget(`sluice:rl:{${RULE}}:-`, 'c')).not.toBeNull();
    } finally {
      inspect.disconnect();
    }
  });
});
