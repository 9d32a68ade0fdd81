import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { systemClock } from '../../../lib/clock.ts';
import { appLockResource, fenceKey, legacyAppLockResource } from '../../../lib/redis/key-layout.ts';
import { startRedisServers, type RedisServer } from '../../../test/helpers/redis-server.ts';
import { connectRedis, waitReady } from '../../../lib/redis/connection.ts';
import { AppLocks } from '../../src/leader/app-locks.ts';
import { RedLock } from '../../src/leader/redlock.ts';
import { ReleaseNotifier } from '../../src/leader/release-notifier.ts';

let servers: RedisServer[];
let clients: Redis[] = [];

beforeAll(async () => {
  servers = await startRedisServers(3);
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});
afterEach(async () => {
  for (const c of clients) c.disconnect();
  clients = [];
  await Promise.all(servers.map((s) => s.restart()));
});

/** The app locks of one pod in `namespace`, on the three real lock nodes. */
async function locksIn(namespace: string, holderId: string): Promise<AppLocks> {
  const nodes = servers.map((s, i) => connectRedis({ url: s.url, name: `node${i}`, commandTimeoutMs: 500, connectTimeoutMs: 500 }));
  const subs = servers.map((s, i) => connectRedis({ url: s.url, name: `node${i}-events`, connectTimeoutMs: 500 }));
  clients.push(...nodes, ...subs);
  await Promise.all(nodes.map((c) => waitReady(c)));
  return new AppLocks({ lock: new RedLock(nodes, systemClock), notifier: new ReleaseNotifier(subs), clock: systemClock, holderId, namespace });
}

describe('app locks are per namespace', () => {
  it('the same resource name in two namespaces is two locks; in one namespace it is one', async () => {
    const a = await locksIn('team-a', 'pod-a');
    const a2 = await locksIn('team-a', 'pod-a2');
    const b = await locksIn('team-b', 'pod-b');
    const heldA = await a.acquire('orders', 10_000);
    const heldB = await b.acquire('orders', 10_000);
    expect(heldA.resource).toBe('orders');
    expect(heldB.resource).toBe('orders');
    await expect(a2.acquire('orders', 10_000)).rejects.toMatchObject({ code: 'SLUICE_ERR_LOCK_NOT_ACQUIRED' });
    // Releasing one namespace's lock frees it there only.
    await b.release('orders', heldB.lockId);
    await expect(a2.acquire('orders', 10_000)).rejects.toMatchObject({ code: 'SLUICE_ERR_LOCK_NOT_ACQUIRED' });
    expect((await b.acquire('orders', 10_000)).resource).toBe('orders');
  });

  it('a resource name with braces stays inside its own hash tag', async () => {
    const a = await locksIn('team-a', 'pod-a');
    const b = await locksIn('team-a', 'pod-b');
    await a.acquire('x}', 10_000);
    // "x}" and "x" would share a tag if the brace closed it; escaped, they are two locks.
    expect((await b.acquire('x', 10_000)).resource).toBe('x');
    expect(appLockResource('team-a', 'x}')).toBe('applock/team-a/x%7D');
  });

  it('forgets locks the app let expire without releasing them', async () => {
    const a = await locksIn('team-a', 'pod-a');
    for (let i = 0; i < 5; i++) await a.acquire(`short-${i}`, 50);
    await a.acquire('long', 10_000);
    expect(a.count).toBe(6);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(a.count).toBe(1);
  });

  it('fencing tokens keep increasing across the rename from the version-1 app lock keys', async () => {
    // Version 1 kept `app/ledger`'s counter; a majority saw 41, one node lagged.
    const raw = servers.map((s, i) => connectRedis({ url: s.url, name: `raw${i}` }));
    clients.push(...raw);
    await Promise.all(raw.map((c) => waitReady(c)));
    await Promise.all(raw.map((c, i) => c.set(fenceKey(legacyAppLockResource('ledger')), i === 2 ? '7' : '41')));
    const a = await locksIn('team-a', 'pod-a');
    const first = await a.acquire('ledger', 10_000);
    expect(first.fencingToken).toBeGreaterThan(41);
    await a.release('ledger', first.lockId);
    // Another process, which never read the old counter, still issues a higher token: the nodes hold the floor.
    const other = await locksIn('team-a', 'pod-c');
    const second = await other.acquire('ledger', 10_000);
    expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
    const counters = await Promise.all(raw.map((c) => c.get(fenceKey(appLockResource('team-a', 'ledger')))));
    expect(counters.filter((c) => Number(c) >= 41)).not.toHaveLength(0);
  });
});
