import { request, type ClientRequest } from 'node:http';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import { startRedisServers, type RedisServer } from '../../../test/helpers/redis-server.ts';
import { startSidecar, type RunningSidecar } from '../../../test/helpers/sidecar.ts';

// Locks held by a stream on the local API of a real sidecar, over 3 real redis-server lock nodes.
let nodes: RedisServer[];
let holder: RunningSidecar;
let other: RunningSidecar;

beforeAll(async () => {
  nodes = await startRedisServers(3);
  const lockNodes = nodes.map((n) => n.url);
  holder = await startSidecar('', { lockNodes });
  other = await startSidecar('', { lockNodes });
  for (const s of [holder, other]) await lockNodesReady(s.admin);
}, 60_000);

/** Until the sidecar's connections to all 3 lock nodes are up (a check before that fails closed). */
async function lockNodesReady(admin: string): Promise<void> {
  await eventually(async () => {
    const r = (await (await fetch(`${admin}/readyz`)).json()) as { checks: { name: string; details?: { ready?: number } }[] };
    expect(r.checks.find((c) => c.name === 'lock-nodes')?.details?.ready).toBe(3);
  }, { timeoutMs: 20_000 });
}

afterAll(async () => {
  await Promise.all([holder, other].filter(Boolean).map((s) => s.stop(200)));
  await Promise.all((nodes ?? []).map((n) => n.stop()));
});

interface Hold {
  req: ClientRequest;
  status: Promise<number>;
  events: Record<string, unknown>[];
  /** Resolves when the sidecar ends the stream. */
  ended: Promise<void>;
  heartbeat(): void;
}

/** Opens a hold call and keeps its request body open for heartbeats. */
function openHold(resource: string, query: string): Hold {
  const req = request(`${holder.localApi}/v1/locks/${resource}/hold?${query}`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' } });
  const events: Record<string, unknown>[] = [];
  let endedResolve!: () => void;
  const ended = new Promise<void>((r) => (endedResolve = r));
  const status = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      resolve(res.statusCode ?? 0);
      let buf = '';
      res.on('data', (c: Buffer) => {
        buf += c.toString();
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          events.push({ ...(JSON.parse(buf.slice(0, i)) as Record<string, unknown>), receivedAt: Date.now() });
          buf = buf.slice(i + 1);
        }
      });
      res.on('end', () => {
        if (buf.trim()) events.push(JSON.parse(buf) as Record<string, unknown>);
        endedResolve();
      });
      res.on('error', () => endedResolve());
    });
    req.on('error', (err) => {
      reject(err);
      endedResolve();
    });
  });
  status.catch(() => {});
  req.flushHeaders();
  return { req, status, events, ended, heartbeat: () => req.write('\n') };
}

async function take(resource: string, ttl = '10s'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${other.localApi}/v1/locks/${resource}`, { method: 'POST', body: JSON.stringify({ ttl }), signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function keepBeating(h: Hold, everyMs: number): () => void {
  const t = setInterval(() => h.heartbeat(), everyMs);
  return () => clearInterval(t);
}

describe('POST /v1/locks/{resource}/hold', () => {
  it('renews while the app heartbeats, refuses others meanwhile, and releases when the app ends the call', async () => {
    const h = openHold('report', 'ttl=300ms&heartbeat=1s');
    expect(await h.status).toBe(200);
    const stop = keepBeating(h, 50);
    try {
      await eventually(() => expect(h.events.filter((e) => e.event === 'renewed').length).toBeGreaterThanOrEqual(3), { timeoutMs: 10_000 });
      // Well past the 300 ms ttl: still held, because it is renewed.
      expect((await take('report')).status).toBe(409);
    } finally {
      stop();
    }
    const acquired = h.events[0]!;
    expect(acquired).toMatchObject({ event: 'acquired', resource: 'report', heartbeatMs: 1000 });
    expect(typeof acquired.fencingToken).toBe('number');
    expect(h.events.filter((e) => e.event === 'renewed').every((e) => e.lockId === acquired.lockId && e.fencingToken === acquired.fencingToken)).toBe(true);
    h.req.end();
    await h.ended;
    expect(h.events.at(-1)).toMatchObject({ event: 'released', reason: 'done' });
    const after = await take('report');
    expect(after.status).toBe(200);
    expect(after.body.fencingToken as number).toBeGreaterThan(acquired.fencingToken as number);
    await fetch(`${other.localApi}/v1/locks/report/release`, { method: 'POST', body: JSON.stringify({ lockId: after.body.lockId }) });
  });

  it('releases at once when the client goes away, long before the ttl', async () => {
    const h = openHold('crash', 'ttl=30s');
    expect(await h.status).toBe(200);
    await eventually(() => expect(h.events[0]?.event).toBe('acquired'));
    expect((await take('crash')).status).toBe(409);
    h.req.destroy(); // the app died
    await eventually(async () => expect((await take('crash', '1s')).status).toBe(200), { timeoutMs: 5_000 });
  });

  it('releases when the app stops heartbeating, and says so', async () => {
    const h = openHold('hung', 'ttl=30s&heartbeat=300ms');
    expect(await h.status).toBe(200);
    await h.ended; // no heartbeat sent at all
    expect(h.events.map((e) => e.event)).toEqual(['acquired', 'released']);
    expect(h.events[1]).toMatchObject({ reason: 'heartbeat-missed' });
    expect((await take('hung', '1s')).status).toBe(200);
    h.req.destroy();
  });

  it('ends at the maximum hold time even while the app heartbeats', async () => {
    const h = openHold('bounded', 'ttl=30s&heartbeat=1s&maxHold=600ms');
    expect(await h.status).toBe(200);
    const stop = keepBeating(h, 50);
    await h.ended;
    stop();
    expect(h.events.at(-1)).toMatchObject({ event: 'released', reason: 'max-hold' });
    expect((await take('bounded', '1s')).status).toBe(200);
    h.req.destroy();
  });

  it('says "lost" before the validity ends when renewals fail', async () => {
    const h = openHold('fragile', 'ttl=1500ms&heartbeat=5s');
    expect(await h.status).toBe(200);
    const stop = keepBeating(h, 100);
    try {
      await eventually(() => expect(h.events[0]?.event).toBe('acquired'));
      // Two of three lock nodes stop answering: no renewal can reach a majority.
      nodes[1]!.pause();
      nodes[2]!.pause();
      await h.ended;
    } finally {
      stop();
      nodes[1]!.resume();
      nodes[2]!.resume();
    }
    const lost = h.events.at(-1)!;
    expect(lost).toMatchObject({ event: 'lost', reason: 'renewal-failed' });
    const lastValidity = h.events.filter((e) => e.event === 'acquired' || e.event === 'renewed').at(-1)!;
    expect(lost.receivedAt as number).toBeLessThan(Date.parse(lastValidity.validUntil as string));
    h.req.destroy();
  });

  it('says "lost" (taken) when the nodes no longer hold it for this holder', async () => {
    const h = openHold('takeover', 'ttl=3s&heartbeat=5s');
    expect(await h.status).toBe(200);
    const stop = keepBeating(h, 100);
    try {
      await eventually(() => expect(h.events[0]?.event).toBe('acquired'));
      // The lock vanishes from every node (as after an operator's mistake or lost node data) and
      // another holder takes it: the next renewal is refused by all nodes.
      for (const n of nodes) {
        const c = new Redis(n.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
        await c.connect();
        for (const k of await c.keys('*takeover*')) if (!k.includes('fence')) await c.del(k);
        c.disconnect();
      }
      expect((await take('takeover')).status).toBe(200);
      await h.ended;
    } finally {
      stop();
    }
    expect(h.events.at(-1)).toMatchObject({ event: 'lost', reason: 'taken' });
    h.req.destroy();
  });

  it('refuses bad parameters with 400 and a lock held elsewhere with 409, as a plain take does', async () => {
    const bad = openHold('x', 'heartbeat=1ms');
    expect(await bad.status).toBe(400);
    await bad.ended;
    bad.req.destroy();
    const held = await take('busy');
    expect(held.status).toBe(200);
    const refused = openHold('busy', 'ttl=1s');
    expect(await refused.status).toBe(409);
    await refused.ended;
    refused.req.destroy();
  });

  it('keeps plain take, extend and release', async () => {
    const t = await take('plain', '1s');
    expect(t.status).toBe(200);
    const ext = await fetch(`${other.localApi}/v1/locks/plain/extend`, { method: 'POST', body: JSON.stringify({ lockId: t.body.lockId, ttl: '2s' }) });
    expect(ext.status).toBe(200);
    const rel = await fetch(`${other.localApi}/v1/locks/plain/release`, { method: 'POST', body: JSON.stringify({ lockId: t.body.lockId }) });
    expect(rel.status).toBe(200);
    await sleep(0);
  });
});
