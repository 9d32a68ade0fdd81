import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { systemClock } from '../../../lib/clock.ts';
import { startRedisServers, type RedisServer } from '../../../test/helpers/redis-server.ts';
import { eventually } from '../../../test/helpers/eventually.ts';
import { connectRedis, waitReady } from '../../../lib/redis/connection.ts';
import { createLogger, silentLogger } from '../../../lib/log.ts';
import { RedLock } from '../../src/leader/redlock.ts';
import { LeaderElector, type LeadershipStatus } from '../../src/leader/leader-elector.ts';
import { stepDownAt } from '../../src/leader/validity.ts';


let servers: RedisServer[];
let clients: Redis[];
let n = 0;
const resource = () => `test/r${++n}`;

beforeAll(async () => {
  servers = await startRedisServers(3);
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});
afterEach(async () => {
  for (const c of clients ?? []) c.disconnect();
  await Promise.all(servers.map((s) => s.restart()));
});

async function engine(): Promise<RedLock> {
  clients = servers.map((s, i) => connectRedis({ url: s.url, name: `node${i}`, commandTimeoutMs: 200, connectTimeoutMs: 300 }));
  await Promise.all(clients.map((c) => waitReady(c)));
  return new RedLock(clients, systemClock);
}

describe('RedLock engine on 3 real nodes', () => {
  it('admits one holder at a time; the loser learns who holds it and for how long', async () => {
    const lock = await engine();
    const r = resource();
    const a = await lock.acquire(r, 5_000, 'a');
    const b = await lock.acquire(r, 5_000, 'b');
    expect(a.acquired).toBe(true);
    expect(b).toMatchObject({ acquired: false, holder: 'a' });
    if (b.acquired || !a.acquired) throw new Error('unreachable');
    expect(b.retryInMs).toBeGreaterThan(4_000);
    expect(b.token).toBe(a.lease.token);
    await lock.release(a.lease);
    const c = await lock.acquire(r, 5_000, 'b');
    expect(c.acquired && c.lease.token).toBe(a.lease.token + 1);
  });

  it('keeps extending with 1 of 3 nodes dead, and fails once 2 are', async () => {
    const lock = await engine();
    const a = await lock.acquire(resource(), 2_000, 'a');
    if (!a.acquired) throw new Error('not acquired');
    await servers[0]!.kill();
    expect(await lock.extend(a.lease)).toEqual({ extended: true });
    await servers[1]!.kill();
    expect(await lock.extend(a.lease)).toEqual({ extended: false, lostForSure: false });
  });

  it('issues strictly increasing tokens even when successive holders win different majorities', async () => {
    const lock = await engine();
    const r = resource();
    const tokens: number[] = [];
    // Each holder wins with a different node down; the counter must carry over through the overlap.
    for (const down of [0, 1, 2, 0, 2, 1]) {
      await servers[down]!.kill();
      const got = await lock.acquire(r, 5_000, `h${tokens.length}`);
      if (!got.acquired) throw new Error('not acquired');
      tokens.push(got.lease.token);
      await lock.release(got.lease);
      await servers[down]!.restart();
      await eventually(() => expect(clients[down]!.status).toBe('ready'));
    }
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1] as number);
  });

  it('tokens keep increasing across engines that know nothing of each other, majorities differing', async () => {
    // Each sidecar has its own engine; one that never saw the resource proposes token 1, which the
    // nodes' counters refuse, so its acquisition takes the second (write-back) round.
    const engines = [await engine(), new RedLock(clients, systemClock), new RedLock(clients, systemClock)];
    const r = resource();
    const tokens: number[] = [];
    for (const [i, down] of [[0, 0], [0, 1], [1, 2], [2, 0], [0, 2], [1, 1], [2, 1]] as const) {
      await servers[down]!.kill();
      const got = await engines[i]!.acquire(r, 5_000, `e${i}`);
      if (!got.acquired) throw new Error('not acquired');
      tokens.push(got.lease.token);
      await engines[i]!.release(got.lease);
      await servers[down]!.restart();
      await eventually(() => expect(clients[down]!.status).toBe('ready'));
    }
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1] as number);
  });

  it('one acquire with a proposal the nodes take costs one round; a stale proposal still wins, higher', async () => {
    const [a, b] = [await engine(), new RedLock(clients, systemClock)];
    const r = resource();
    for (let i = 0; i < 3; i++) {
      const got = await a.acquire(r, 5_000, 'a');
      if (!got.acquired) throw new Error('not acquired');
      expect(got.lease.token).toBe(i + 1);
      await a.release(got.lease);
    }
    const fences = await Promise.all(clients.map((c) => c.get(`sluice:fence:{${r}}`)));
    expect(fences).toEqual(['3', '3', '3']);
    const late = await b.acquire(r, 5_000, 'b'); // b proposes 1
    expect(late.acquired && late.lease.token).toBe(4);
  });
});

describe('LeaderElector', () => {
  function elector(lock: RedLock, id: string, ttlMs: number) {
    const e = new LeaderElector({ id: 'shop/le', name: 'le', namespace: 'shop', timing: { ttlMs, renewEveryMs: ttlMs / 4 }, lock, clock: systemClock, logger: process.env.LE_DEBUG ? createLogger('debug') : silentLogger, holderId: id });
    const seen: LeadershipStatus[] = [];
    e.onChange((s) => seen.push(s));
    e.start();
    return { e, seen };
  }

  it('with 1 of 3 lock nodes killed, leadership continues and the token is unchanged', async () => {
    const lock = await engine();
    const { e } = elector(lock, 'a', 1_000);
    try {
      await eventually(() => expect(e.status().leader).toBe(true));
      const token = e.status().fencingToken;
      await servers[2]!.kill();
      // Several renewals (every 250 ms) past the original ttl.
      const until = Date.now() + 1_500;
      while (Date.now() < until) {
        expect(e.status()).toMatchObject({ leader: true, fencingToken: token });
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await e.stop();
    }
  });

  it('with 2 of 3 killed, the leader steps down — and says so — before its validity ends', async () => {
    const lock = await engine();
    const ttlMs = 2_000;
    const { e, seen } = elector(lock, 'a', ttlMs);
    try {
      await eventually(() => expect(e.status().leader).toBe(true));
      await Promise.all([servers[0]!.kill(), servers[1]!.kill()]);
      const killedAt = seen.length;
      // The first step-down after the kill (other test files may start servers on freed ports later).
      const down = await eventually(() => {
        const i = seen.findIndex((s, j) => j >= killedAt - 1 && !s.leader);
        expect(i).toBeGreaterThanOrEqual(0);
        return i;
      }, { timeoutMs: 3 * ttlMs });
      const steppedDownAt = Date.parse(seen[down]!.at);
      // The last announced validUntil is the step-down deadline; the lock's validity ends one
      // margin later. Stepping down must come before that end.
      const announced = Date.parse(seen.slice(0, down).filter((s) => s.leader).at(-1)?.validUntil as string);
      const validityEnd = announced + (ttlMs - (stepDownAt(ttlMs, ttlMs)));
      expect(steppedDownAt).toBeLessThan(validityEnd);
    } finally {
      await e.stop();
    }
  });
});
