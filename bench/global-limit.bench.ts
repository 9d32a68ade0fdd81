// Global rate limits against rate-limiter-flexible's RateLimiterRedis on the same redis-server:
// decisions/s, Redis commands per decision (INFO commandstats), over-admission with 2 limiters
// sharing one limit, and decision latency p50/p99. `npm run bench:global-limit`.
// The Rust and Go peers run the same load in their own processes (bench/peers/): Kuadrant's
// limitador crate on the same redis-server (cached storage beside lease mode, plain Redis storage
// beside strict) and a 2-node gubernator cluster in memory (GLOBAL beside lease, BATCHING beside
// strict). Each harness measures its own CPU (getrusage); Redis is read here around the run.
import { cpus } from 'node:os';
import { Registry } from 'prom-client';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { systemClock } from '../lib/clock.ts';
import { compilePlan } from '../lib/policy/index.ts';
import type { RateLimitRule } from '../lib/policy/plan.ts';
import { RedisServer } from '../test/helpers/redis-server.ts';
import { silentLogger } from '../lib/log.ts';
import { connectRedis, waitReady } from '../lib/redis/connection.ts';
import { createGlobalLimiter, type GlobalMode } from '../sidecar/src/limit/global/index.ts';
import { GCRA } from '../sidecar/src/limit/global/scripts.ts';
import { loadScriptsOn } from '../sidecar/src/redis/lua-script.ts';
import { printTable } from './lib/table.ts';
import { Samples, commandCount, percentile } from './lib/redis-stats.ts';
import { execFile } from 'node:child_process';
import { peer, type Peer, type PeerLoadResult } from './lib/peers.ts';

const LIMIT = 20_000; // per second, burst = LIMIT
const RUN_MS = 4_000;
const PER_TICK = 64; // decisions in flight per limiter per event-loop turn

interface Decider {
  decide(): boolean | Promise<boolean>;
}

interface Result {
  name: string;
  decisions: number;
  admitted: number;
  seconds: number;
  commands: number;
  p50: number;
  p99: number;
  /** CPU µs per decision of this (bench) process and of redis-server: steadier than rates on a busy machine. */
  nodeCpuUs: number;
  redisCpuUs: number;
}

const server = await RedisServer.start();
const admin = connectRedis({ url: server.url, name: 'bench-admin', commandTimeoutMs: 5_000 });
await waitReady(admin);

function rule(name: string): RateLimitRule {
  return compilePlan([{
    apiVersion: 'sluice.dev/v1alpha1', kind: 'RateLimitPolicy', metadata: { name: 'bench', namespace: 'bench' },
    spec: { selector: {}, rules: [{ name, limit: { requests: LIMIT, per: '1s', burst: LIMIT }, scope: 'Global', failureMode: 'Open' }] },
  }]).rateLimits[0] as RateLimitRule;
}

async function sluice(mode: GlobalMode, name: string): Promise<Decider[]> {
  const r = rule(name);
  return Promise.all(['a', 'b'].map(async (id) => {
    const redis = connectRedis({ url: server.url, name: `${name}-${id}`, commandTimeoutMs: 1_000 });
    loadScriptsOn(redis, [GCRA]); // as GlobalLimitFeature does; rate-limiter-flexible's defineCommand loads on first NOSCRIPT
    await waitReady(redis);
    const limiter = createGlobalLimiter(r, { redis, clock: systemClock, logger: silentLogger, registry: new Registry(), sidecarId: id, mode });
    return {
      decide: () => {
        const d = limiter.consume('k', systemClock.now());
        return d instanceof Promise ? d.then((x) => x.allowed) : d.allowed;
      },
    };
  }));
}

async function flexible(name: string): Promise<Decider[]> {
  return Promise.all(['a', 'b'].map(async (id) => {
    const redis = connectRedis({ url: server.url, name: `${name}-${id}`, commandTimeoutMs: 1_000 });
    await waitReady(redis);
    const limiter = new RateLimiterRedis({ storeClient: redis, points: LIMIT, duration: 1, keyPrefix: name });
    return {
      decide: () => limiter.consume('k', 1).then(() => true, (e: unknown) => {
        if (e instanceof RateLimiterRes) return false;
        throw e;
      }),
    };
  }));
}

/** Both limiters offered the same load at once: PER_TICK decisions each per event-loop turn. */
async function run(name: string, deciders: Decider[]): Promise<Result> {
  await new Promise((r) => setTimeout(r, 1_100)); // start on a fresh second/window for every contender
  const lat = new Samples();
  let decisions = 0;
  let admitted = 0;
  const before = await commandCount(admin);
  const redisCpuBefore = await redisCpuSeconds(admin);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const end = started + RUN_MS;
  await Promise.all(deciders.map(async (d) => {
    while (performance.now() < end) {
      const pending: Promise<void>[] = [];
      for (let i = 0; i < PER_TICK; i++) {
        const t0 = performance.now();
        const r = d.decide();
        if (typeof r === 'boolean') {
          lat.push(performance.now() - t0);
          decisions++;
          if (r) admitted++;
        } else {
          pending.push(r.then((ok) => {
            lat.push(performance.now() - t0);
            decisions++;
            if (ok) admitted++;
          }));
        }
      }
      if (pending.length > 0) await Promise.all(pending);
      await new Promise<void>((r) => setImmediate(r));
    }
  }));
  const seconds = (performance.now() - started) / 1_000;
  const cpu = process.cpuUsage(cpuBefore);
  const redisCpu = (await redisCpuSeconds(admin)) - redisCpuBefore;
  const commands = (await commandCount(admin)) - before;
  const v = lat.values();
  return {
    name, decisions, admitted, seconds, commands, p50: percentile(v, 50), p99: percentile(v, 99),
    nodeCpuUs: (cpu.user + cpu.system) / decisions, redisCpuUs: (redisCpu * 1e6) / decisions,
  };
}

// rate-limiter-flexible and strict mode are close, so they alternate over two rounds (each on
// fresh keys) and the aims use both: a burst of load from other work on this shared machine then
// hits both contenders rather than whichever happened to run at the time.
const results: Result[] = [];
for (const round of [1, 2]) {
  results.push(await run('rate-limiter-flexible', await flexible(`rlf${round}`)));
  results.push(await run('sluice strict', await sluice('strict', `strict${round}`)));
}
results.push(await run('sluice lease', await sluice('lease', 'lease')));

/** One peer run: the harness drives 2 limiters itself; commands and redis CPU are read around it. */
async function runPeer(name: string, p: Peer, args: string[]): Promise<Result> {
  await new Promise((r) => setTimeout(r, 1_100));
  const before = await commandCount(admin);
  const redisCpuBefore = await redisCpuSeconds(admin);
  const out = await new Promise<PeerLoadResult>((resolve, reject) => {
    // One thread for the Go peers, as the one Node thread here (tokio's current_thread in limitador's harness).
    execFile(p.bin, args, { env: { ...process.env, GOMAXPROCS: '1' }, timeout: RUN_MS + 60_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${name}: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as PeerLoadResult);
    });
  });
  if (Number(out.errors) > 0) console.log(`  WARNING: ${name}: ${out.errors} decisions failed`);
  const redisCpu = (await redisCpuSeconds(admin)) - redisCpuBefore;
  const commands = (await commandCount(admin)) - before;
  return {
    name, decisions: out.ops, admitted: Number(out.admitted), seconds: out.seconds, commands, p50: out.p50Ms ?? NaN, p99: out.p99Ms ?? NaN,
    nodeCpuUs: (out.cpuSeconds * 1e6) / out.ops, redisCpuUs: (redisCpu * 1e6) / out.ops,
  };
}
const limitador = peer('limitador');
const gubernator = peer('gubernator');
const peerArgs = (tag: string) => [String(LIMIT), String(RUN_MS / 1000), String(PER_TICK), tag];
if (limitador) {
  results.push(await runPeer(`${limitador.version} cached (Rust)`, limitador, ['cached', server.url, ...peerArgs('lim-cached')]));
  results.push(await runPeer(`${limitador.version} redis (Rust)`, limitador, ['strict', server.url, ...peerArgs('lim-strict')]));
}
if (gubernator) {
  results.push(await runPeer(`${gubernator.version} GLOBAL (Go)`, gubernator, ['global', ...peerArgs('gub-global')]));
  results.push(await runPeer(`${gubernator.version} BATCHING (Go)`, gubernator, ['strict', ...peerArgs('gub-strict')]));
}

const allowedByLimit = (r: Result) => LIMIT + LIMIT * r.seconds; // burst + refill over the run
printTable(
  `Global limit, 2 limiters sharing ${LIMIT}/s (burst ${LIMIT}) on one redis-server, ${RUN_MS / 1000} s, ${PER_TICK} decisions in flight each — ${cpus().length} cores, ${cpus()[0]?.model ?? ''}`,
  ['contender', 'decisions/s', 'admitted', 'allowed by limit', 'over-admission %', 'redis cmds/decision', 'cmds/admitted', 'p50 ms', 'p99 ms', 'client CPU µs/dec', 'redis CPU µs/dec'],
  results.map((r) => [
    r.name, r.decisions / r.seconds, r.admitted, Math.round(allowedByLimit(r)),
    Number((100 * (r.admitted / allowedByLimit(r) - 1)).toFixed(2)), Number((r.commands / r.decisions).toFixed(4)), Number((r.commands / r.admitted).toFixed(3)),
    Number(r.p50.toFixed(4)), Number(r.p99.toFixed(4)), Number(r.nodeCpuUs.toFixed(2)), Number(r.redisCpuUs.toFixed(2)),
  ]),
);
const both = (name: string): Result => {
  const rs = results.filter((r) => r.name === name);
  const sum = (f: (r: Result) => number) => rs.reduce((s, r) => s + f(r), 0);
  // Rates over both rounds together; the worse p99 of the two.
  return {
    name, decisions: sum((r) => r.decisions), admitted: sum((r) => r.admitted), seconds: sum((r) => r.seconds), commands: sum((r) => r.commands),
    p50: Math.max(...rs.map((r) => r.p50)), p99: Math.max(...rs.map((r) => r.p99)),
    nodeCpuUs: sum((r) => r.nodeCpuUs * r.decisions) / sum((r) => r.decisions), redisCpuUs: sum((r) => r.redisCpuUs * r.decisions) / sum((r) => r.decisions),
  };
};
const rlf = both('rate-limiter-flexible');
const strict = both('sluice strict');
const lease = both('sluice lease');
const rate = (r: Result) => r.decisions / r.seconds;
console.log('\nAims');
console.log(`  lease  vs rate-limiter-flexible decisions/s: ${(rate(lease) / rate(rlf)).toFixed(1)}× (aim ≥ 3×); cmds/decision ${(lease.commands / lease.decisions).toFixed(4)} (aim ≤ 0.1); over-admission ${(100 * (lease.admitted / allowedByLimit(lease) - 1)).toFixed(2)} % (aim ≤ 1 %)`);
console.log(`  strict vs rate-limiter-flexible decisions/s (2 alternating rounds): ${(rate(strict) / rate(rlf)).toFixed(2)}× (aim ≥ 1.0×); worse-round p99 ${strict.p99.toFixed(3)} ms vs ${rlf.p99.toFixed(3)} ms (aim: no worse)`);
console.log(`  CPU per decision, strict vs rate-limiter-flexible: node ${strict.nodeCpuUs.toFixed(2)} vs ${rlf.nodeCpuUs.toFixed(2)} µs, redis-server ${strict.redisCpuUs.toFixed(2)} vs ${rlf.redisCpuUs.toFixed(2)} µs`);
// Against the Rust and Go peers, per CPU: decisions per CPU-second of every process that does
// the work (the limiters' process plus redis-server), like consistency beside like.
const cpuPerDecision = (r: Result) => r.nodeCpuUs + r.redisCpuUs;
// Per run (a run's allowance is one burst plus its refill); meaningless when the load never reached the limit.
const overAdmission = (r: Result) => (r.decisions <= allowedByLimit(r) ? 'n/a (offered less than the limit)' : `${(100 * (r.admitted / allowedByLimit(r) - 1)).toFixed(2)} %`);
const peerRow = (prefix: string, suffix: string) => results.find((r) => r.name.startsWith(prefix) && r.name.includes(suffix));
const lines: [string, Result, (Result | undefined)[]][] = [
  ['lease (vs limitador cached, gubernator GLOBAL)', lease, [peerRow('limitador', 'cached'), peerRow('gubernator', 'GLOBAL')]],
  ['strict (vs limitador redis, gubernator BATCHING)', strict, [peerRow('limitador', 'redis'), peerRow('gubernator', 'BATCHING')]],
];
for (const [label, ours, theirs] of lines) {
  const present = theirs.filter((t): t is Result => t !== undefined);
  if (present.length === 0) continue;
  const best = present.reduce((a, b) => (cpuPerDecision(a) <= cpuPerDecision(b) ? a : b));
  console.log(`  ${label}: sluice ${Math.round(1e6 / cpuPerDecision(ours))} decisions per CPU-second; ${present.map((t) => `${t.name} ${Math.round(1e6 / cpuPerDecision(t))}`).join(', ')} — ${(cpuPerDecision(best) / cpuPerDecision(ours)).toFixed(2)}× the best (aim ≥ 1×); decisions/s ${(rate(ours) / rate(best)).toFixed(2)}×; over-admission ${present.map(overAdmission).join(' / ')} vs ${results.filter((r) => r.name === ours.name).map(overAdmission).join(' / ')}`);
}
admin.disconnect();
await server.stop();

async function redisCpuSeconds(redis: typeof admin): Promise<number> {
  const info = await redis.info('cpu');
  const field = (k: string) => Number(new RegExp(`^${k}:([0-9.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return field('used_cpu_user') + field('used_cpu_sys');
}
process.exit(0);
