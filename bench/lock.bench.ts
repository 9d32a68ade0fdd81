// Locks on 3 independent redis-servers: Sluice's RedLock engine (with fencing tokens) against the
// `redlock` package, side by side — acquire+release latency p50/p99 and throughput — and the
// leader failover time of real sluice-proxy processes after `kill -9`. `npm run bench:lock`.
import { cpus } from 'node:os';
// @ts-expect-error -- redlock@5.0.0-beta.2's ESM export map carries no types; used only here, as the baseline.
import Redlock from 'redlock';
import type { Redis } from 'ioredis';
import { systemClock } from '../lib/clock.ts';
import { startRedisServers } from '../test/helpers/redis-server.ts';
import { connectRedis, waitReady } from '../sidecar/src/redis/connection.ts';
import { RedLock } from '../sidecar/src/leader/redlock.ts';
import { SidecarProcess, electionConfig } from '../sidecar/test/leader/sidecar-process.ts';
import { printTable } from './lib/table.ts';
import { Samples, percentile } from './lib/redis-stats.ts';

const SEQUENTIAL = 3_000;
const CONCURRENCY = 32;
const THROUGHPUT_MS = 3_000;
const TTL_MS = 2_000;
const RENEW_MS = 500;

const nodes = await startRedisServers(3);
const clients = async (autoPipelining: boolean): Promise<Redis[]> => {
  const cs = nodes.map((n, i) => connectRedis({ url: n.url, name: `bench-${i}`, commandTimeoutMs: 1_000, autoPipelining }));
  await Promise.all(cs.map((c) => waitReady(c)));
  return cs;
};

interface Contender {
  name: string;
  cycle(resource: string): Promise<void>;
}

const sluiceLock = new RedLock(await clients(true), systemClock);
const sluice: Contender = {
  name: 'sluice RedLock + fencing token',
  async cycle(resource) {
    const r = await sluiceLock.acquire(resource, 10_000, 'bench');
    if (!r.acquired) throw new Error('not acquired');
    await sluiceLock.release(r.lease);
  },
};
const redlock = new Redlock(await clients(false), { retryCount: 0 });
const pkg: Contender = {
  name: 'redlock@5 package',
  async cycle(resource) {
    const lock = await redlock.acquire([resource], 10_000);
    await lock.release();
  },
};

async function latency(c: Contender): Promise<{ p50: number; p99: number }> {
  const s = new Samples();
  for (let i = 0; i < SEQUENTIAL; i++) {
    const t0 = performance.now();
    await c.cycle(`lat-${c.name}-${i}`);
    s.push(performance.now() - t0);
  }
  return { p50: percentile(s.values(), 50), p99: percentile(s.values(), 99) };
}

async function throughput(c: Contender): Promise<number> {
  let done = 0;
  const end = performance.now() + THROUGHPUT_MS;
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async (_, w) => {
    for (let i = 0; performance.now() < end; i++) {
      await c.cycle(`tp-${c.name}-${w}-${i}`);
      done++;
    }
  }));
  return done / ((performance.now() - started) / 1_000);
}

const rows: (string | number)[][] = [];
const figures: Record<string, { p50: number; p99: number; ops: number }> = {};
for (const c of [pkg, sluice]) {
  await latency(c); // warm-up
  const l = await latency(c);
  const ops = await throughput(c);
  figures[c.name] = { ...l, ops };
  rows.push([c.name, Number(l.p50.toFixed(3)), Number(l.p99.toFixed(3)), ops]);
}
printTable(
  `Lock acquire+release on 3 redis-servers (sequential ×${SEQUENTIAL}; throughput with ${CONCURRENCY} concurrent, distinct resources) — ${cpus().length} cores, ${cpus()[0]?.model ?? ''}`,
  ['contender', 'p50 ms', 'p99 ms', 'acquire+release/s'],
  rows,
);

// Failover: two sidecars elect over the same nodes; kill -9 the leader; time until the standby leads.
const config = electionConfig(`${TTL_MS}ms`, `${RENEW_MS}ms`, 'bench-election');
const failovers: number[] = [];
for (let round = 0; round < 3; round++) {
  const [a, b] = await Promise.all(['a', 'b'].map((id) => SidecarProcess.start({ id: `fo${round}-${id}`, config, lockNodes: nodes.map((n) => n.url) }))) as [SidecarProcess, SidecarProcess];
  let leader: SidecarProcess | undefined;
  while (leader === undefined) {
    const [sa, sb] = await Promise.all([a.leadership('bench-election'), b.leadership('bench-election')]);
    leader = sa.leader ? a : sb.leader ? b : undefined;
    await new Promise((r) => setTimeout(r, 20));
  }
  const standby = leader === a ? b : a;
  await new Promise((r) => setTimeout(r, Math.random() * RENEW_MS)); // anywhere in the renew cycle
  const t0 = performance.now();
  leader.signal('SIGKILL');
  while (!(await standby.leadership('bench-election')).leader) await new Promise((r) => setTimeout(r, 5));
  failovers.push(performance.now() - t0);
  await Promise.all([a.stop(), b.stop()]);
  await new Promise((r) => setTimeout(r, TTL_MS)); // let the last leader's lock expire
}
printTable(`Leader failover after kill -9 (ttl ${TTL_MS} ms, renewEvery ${RENEW_MS} ms)`, ['round', 'failover ms', 'bound ttl+renewEvery ms'], failovers.map((f, i) => [i + 1, Math.round(f), TTL_MS + RENEW_MS]));

const s = figures[sluice.name]!;
const p = figures[pkg.name]!;
console.log('\nAims');
console.log(`  acquire+release p50 ${s.p50.toFixed(3)} ms (aim ≤ 1 ms); throughput ${(s.ops / p.ops).toFixed(2)}× the redlock package (aim ≥ 1.5×)`);
console.log(`  failover after kill -9: max ${Math.round(Math.max(...failovers))} ms (aim ≤ ttl + renewEvery = ${TTL_MS + RENEW_MS} ms)`);
await Promise.all(nodes.map((n) => n.stop()));
process.exit(0);
