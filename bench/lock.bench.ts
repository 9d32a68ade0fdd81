// Locks on 3 independent redis-servers: Sluice's RedLock engine (with fencing tokens) against the
// `redlock` package and Go's redsync (bench/peers/redsync, GOMAXPROCS=1), side by side — acquire+release latency p50/p99 and throughput — the leader
// failover time of real sluice-proxy processes after `kill -9`, and what a FencingPolicy check
// adds at the protected sidecar (same sidecar, same app, with and without the rule), and Sluice's
// locks through the sidecar's local API (what an app in any language calls). `npm run bench:lock`.
import { cpus } from 'node:os';
// @ts-expect-error -- redlock@5.0.0-beta.2's ESM export map carries no types; used only here, as the baseline.
import Redlock from 'redlock';
import type { Redis } from 'ioredis';
import { systemClock } from '../lib/clock.ts';
import { startRedisServers } from '../test/helpers/redis-server.ts';
import { connectRedis, waitReady } from '../lib/redis/connection.ts';
import { RedLock } from '../sidecar/src/leader/redlock.ts';
import { LOCK_SCRIPTS } from '../sidecar/src/leader/lock-scripts.ts';
import { loadScriptsOn } from '../sidecar/src/redis/lua-script.ts';
import { SidecarProcess, electionConfig } from '../sidecar/test/leader/sidecar-process.ts';
import { printTable } from './lib/table.ts';
import { Agent, request } from 'node:http';
import { cpuDuring } from './lib/cpu.ts';
import { NODE, ProcessGroup } from './lib/processes.ts';
import { startSidecar } from './lib/sidecar.ts';
import { freePort } from '../lib/net.ts';
import { TokenFence } from '../sidecar/src/fencing/token-fence.ts';
import { ACCEPT_TOKEN } from '../sidecar/src/fencing/accept-token-script.ts';
import { Samples, percentile } from './lib/redis-stats.ts';
import { peer, type PeerLoadResult } from './lib/peers.ts';

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

const sluiceClients = await clients(false); // as the sidecar's: RedLock coalesces its own writes (write-batching.ts)
for (const c of sluiceClients) loadScriptsOn(c, LOCK_SCRIPTS); // as the sidecar's LeadershipFeature does
const sluiceLock = new RedLock(sluiceClients, systemClock);
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

/** Resource names are unique per run of a phase (`tag`): every acquire is of a resource never locked before. */
async function latency(c: Contender, tag: string): Promise<{ p50: number; p99: number }> {
  const s = new Samples();
  for (let i = 0; i < SEQUENTIAL; i++) {
    const t0 = performance.now();
    await c.cycle(`lat-${tag}-${c.name}-${i}`);
    s.push(performance.now() - t0);
  }
  return { p50: percentile(s.values(), 50), p99: percentile(s.values(), 99) };
}

/** CPU seconds used so far by the 3 redis-servers (INFO cpu). */
const adminClients = await clients(false);
async function redisCpuSeconds(): Promise<number> {
  const infos = await Promise.all(adminClients.map((c) => c.info('cpu')));
  let total = 0;
  for (const info of infos) for (const k of ['used_cpu_user', 'used_cpu_sys']) total += Number(new RegExp(`^${k}:([0-9.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return total;
}

let lastCpu = { nodeUs: 0, redisUs: 0 };
async function throughput(c: Contender, tag: string): Promise<number> {
  const redisBefore = await redisCpuSeconds();
  const cpuBefore = process.cpuUsage();
  let done = 0;
  const end = performance.now() + THROUGHPUT_MS;
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async (_, w) => {
    for (let i = 0; performance.now() < end; i++) {
      await c.cycle(`tp-${tag}-${c.name}-${w}-${i}`);
      done++;
    }
  }));
  const seconds = (performance.now() - started) / 1_000;
  const cpu = process.cpuUsage(cpuBefore);
  lastCpu = { nodeUs: (cpu.user + cpu.system) / done, redisUs: ((await redisCpuSeconds()) - redisBefore) * 1e6 / done };
  return done / seconds;
}

// Go's redsync runs the same two loops in its own process (GOMAXPROCS=1, like one Node thread):
// the harness measures its own CPU with getrusage; the 3 redis-servers' CPU is read around it here.
const redsyncPeer = peer('redsync');
const REDSYNC = `${redsyncPeer?.version ?? 'redsync'} (Go, go-redis v9)`;
async function runRedsync(args: string[]): Promise<PeerLoadResult> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    execFile(redsyncPeer!.bin, [...args, ...nodes.map((n) => n.url)], { env: { ...process.env, GOMAXPROCS: '1' }, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`redsync ${args.join(' ')}: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as PeerLoadResult);
    });
  });
}

const rows: (string | number)[][] = [];
const figures: Record<string, { p50: number; p99: number; ops: number[]; cpuUs: number[] }> = {};
const record = (name: string, round: number, l: { p50: number; p99: number }, ops: number) => {
  const f = (figures[name] ??= { p50: 0, p99: 0, ops: [], cpuUs: [] });
  f.p50 = Math.max(f.p50, l.p50);
  f.p99 = Math.max(f.p99, l.p99);
  f.ops.push(ops);
  f.cpuUs.push(lastCpu.nodeUs);
  rows.push([`${name} (round ${round})`, Number(l.p50.toFixed(3)), Number(l.p99.toFixed(3)), ops, Number(lastCpu.nodeUs.toFixed(1)), Number(lastCpu.redisUs.toFixed(1))]);
};
for (const c of [pkg, sluice]) await latency(c, 'warm-up');
// Two alternating rounds, so that load from other work on a shared machine hits every contender.
for (const round of [1, 2]) {
  for (const c of [pkg, sluice]) {
    const l = await latency(c, `r${round}`);
    const ops = await throughput(c, `r${round}`);
    record(c.name, round, l, ops);
  }
  if (redsyncPeer) {
    const l = await runRedsync(['latency', String(SEQUENTIAL), `r${round}`]);
    const redisBefore = await redisCpuSeconds();
    const t = await runRedsync(['throughput', String(CONCURRENCY), String(THROUGHPUT_MS / 1000), `r${round}`]);
    if (Number(t.failed) > 0) console.log(`  WARNING: redsync: ${t.failed} failed cycles in round ${round}`);
    lastCpu = { nodeUs: (t.cpuSeconds * 1e6) / t.ops, redisUs: ((await redisCpuSeconds()) - redisBefore) * 1e6 / t.ops };
    record(REDSYNC, round, { p50: l.p50Ms ?? NaN, p99: l.p99Ms ?? NaN }, t.ops / t.seconds);
  }
}
printTable(
  `Lock acquire+release on 3 redis-servers (sequential ×${SEQUENTIAL}; throughput with ${CONCURRENCY} concurrent, distinct resources) — ${cpus().length} cores, ${cpus()[0]?.model ?? ''}`,
  ['contender', 'p50 ms', 'p99 ms', 'acquire+release/s', 'client CPU µs/op', '3 redis CPU µs/op'],
  rows,
);

// Per CPU-second of the client process (the bench process for the Node contenders, the harness
// process for redsync): what each library costs the app that embeds it.
const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const perCpuSecond = (name: string) => 1e6 / meanOf(figures[name]?.cpuUs ?? [NaN]);
if (redsyncPeer) {
  const r = figures[REDSYNC]!;
  const sl = figures[sluice.name]!;
  console.log(`  library per CPU-second: sluice ${Math.round(perCpuSecond(sluice.name))} vs ${REDSYNC} ${Math.round(perCpuSecond(REDSYNC))} acquire+release — ${(perCpuSecond(sluice.name) / perCpuSecond(REDSYNC)).toFixed(2)}× (aim ≥ 1×); throughput ${(meanOf(sl.ops) / meanOf(r.ops)).toFixed(2)}×; p50 ${sl.p50.toFixed(3)} vs ${r.p50.toFixed(3)} ms, p99 ${sl.p99.toFixed(3)} vs ${r.p99.toFixed(3)} ms`);
}

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

// Fencing at the protected sidecar: POSTs carrying a token, through a sidecar that checks it on
// the 3 lock nodes and through the same sidecar without the rule; the difference is the check.
const FENCE_SEQUENTIAL = 3_000;
const FENCE_MS = 3_000;
const FENCING_POLICY = `apiVersion: sluice.dev/v1alpha1
kind: FencingPolicy
metadata: {name: ledger, namespace: bench}
spec:
  selector: {}
  rules:
    - name: writes
      match: {protocol: http, methods: [POST], paths: [{type: Prefix, value: /ledger}]}
      resource: {kind: Lock, name: ledger}
      token: {source: Header, name: sluice-fencing-token}
`;
const group = new ProcessGroup();
const appPort = await freePort();
const app = group.start('app (node:http)', NODE, [new URL('./lib/http-hello-server.ts', import.meta.url).pathname, String(appPort)]);
await app.waitForLine(/^listening/);
const lockArgs = ['--lock-nodes', nodes.map((n) => n.url).join(',')];
const unchecked = await startSidecar(group, 'sluice (no fencing rule)', { configYaml: '', appHttp: `127.0.0.1:${appPort}`, extraArgs: lockArgs });
const checked = await startSidecar(group, 'sluice (FencingPolicy)', { configYaml: FENCING_POLICY, appHttp: `127.0.0.1:${appPort}`, extraArgs: lockArgs });
// Sluice's locks as an app in any language takes them: POST /v1/locks/{resource} then
// POST /v1/locks/{resource}/release on the sidecar's local API (keep-alive), same loops as above.
// Charged CPU: the sidecar process (from /proc) — the app's HTTP client is left out, as the Go
// and Node contenders' own processes are the whole client there.
function localCall(port: number, agent: Agent, path: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
let localRefused = 0;
async function localCycle(agent: Agent, resource: string): Promise<boolean> {
  const a = await localCall(unchecked.localApiPort, agent, `/v1/locks/${resource}`, '{"ttl":"10s"}');
  // 409 on a fresh name: a majority of the nodes did not answer in time (seen at load average ~30).
  if (a.status === 409) {
    localRefused++;
    return false;
  }
  if (a.status !== 200) throw new Error(`local API acquire answered ${a.status}: ${a.text}`);
  const { lockId } = JSON.parse(a.text) as { lockId: string };
  const r = await localCall(unchecked.localApiPort, agent, `/v1/locks/${resource}/release`, JSON.stringify({ lockId }));
  if (r.status !== 200 && r.status !== 204) throw new Error(`local API release answered ${r.status}: ${r.text}`);
  return true;
}
const localRows: (string | number)[][] = [];
const localPerCpu: number[] = [];
for (const round of [1, 2]) {
  const seqAgent = new Agent({ keepAlive: true, maxSockets: 1 });
  const s = new Samples();
  for (let i = 0; i < SEQUENTIAL; i++) {
    const t0 = performance.now();
    await localCycle(seqAgent, `local-lat-r${round}-${i}`);
    s.push(performance.now() - t0);
  }
  seqAgent.destroy();
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let done = 0;
  const redisBefore = await redisCpuSeconds();
  const started = performance.now();
  const { cpuSeconds } = await cpuDuring(unchecked.pid, () => Promise.all(Array.from({ length: CONCURRENCY }, async (_, w) => {
    for (let i = 0; performance.now() - started < THROUGHPUT_MS; i++) {
      if (await localCycle(agent, `local-tp-r${round}-${w}-${i}`)) done++;
    }
  })));
  const seconds = (performance.now() - started) / 1000;
  const redisUs = ((await redisCpuSeconds()) - redisBefore) * 1e6 / done;
  agent.destroy();
  localPerCpu.push(done / cpuSeconds);
  localRows.push([`sluice local API (round ${round})`, Number(percentile(s.values(), 50).toFixed(3)), Number(percentile(s.values(), 99).toFixed(3)), done / seconds, Number((cpuSeconds * 1e6 / done).toFixed(1)), Number(redisUs.toFixed(1))]);
}
printTable(
  `Locks through the sidecar's local API, 3 lock nodes (sequential ×${SEQUENTIAL}; ${CONCURRENCY} concurrent for ${THROUGHPUT_MS / 1000} s)`,
  ['contender', 'p50 ms', 'p99 ms', 'acquire+release/s', 'sidecar CPU µs/op', '3 redis CPU µs/op'],
  localRows,
);
if (localRefused > 0) console.log(`  WARNING: sluice local API: ${localRefused} acquires refused (409) on fresh names`);
if (redsyncPeer) console.log(`  sluice local API: ${localPerCpu.map((x) => Math.round(x)).join(' / ')} acquire+release per sidecar CPU-second (${(Math.min(...localPerCpu) / perCpuSecond(REDSYNC)).toFixed(2)}× redsync's per its process CPU-second)`);

let fenceToken = 1;
function post(port: number, agent: Agent, token: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/ledger/entries', method: 'POST', agent, headers: { 'sluice-fencing-token': String(token), 'content-length': 2 } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end('{}');
  });
}
async function fenceLatency(port: number): Promise<{ p50: number; p99: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const samples = new Samples();
  for (let i = 0; i < FENCE_SEQUENTIAL; i++) {
    const t0 = performance.now();
    const status = await post(port, agent, fenceToken++); // each a new holder: the stored token moves
    samples.push(performance.now() - t0);
    if (status !== 200) throw new Error(`fenced POST answered ${status}`);
  }
  agent.destroy();
  return { p50: percentile(samples.values(), 50), p99: percentile(samples.values(), 99) };
}
async function fenceThroughput(h: { httpPort: number; pid: number }): Promise<{ rps: number; perCpu: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  // One holder writing concurrently: one token for every request (concurrent increasing tokens
  // would be refused whenever a higher one overtook a lower one — as they should be).
  const token = fenceToken++;
  let done = 0;
  const started = performance.now();
  const { cpuSeconds } = await cpuDuring(h.pid, () => Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() - started < FENCE_MS) {
      if ((await post(h.httpPort, agent, token)) !== 200) throw new Error('fenced POST refused');
      done++;
    }
  })));
  agent.destroy();
  return { rps: done / ((performance.now() - started) / 1000), perCpu: done / cpuSeconds };
}
await fenceLatency(unchecked.httpPort);
await fenceLatency(checked.httpPort);
const fenceRows: (string | number)[][] = [];
const fenceFigures = { added50: [] as number[], added99: [] as number[], perCpu: [] as number[], ratio: [] as number[] };
for (const round of [1, 2]) {
  const off = await fenceLatency(unchecked.httpPort);
  const on = await fenceLatency(checked.httpPort);
  const tOff = await fenceThroughput(unchecked);
  const tOn = await fenceThroughput(checked);
  fenceFigures.added50.push((on.p50 - off.p50) * 1000);
  fenceFigures.added99.push((on.p99 - off.p99) * 1000);
  fenceFigures.perCpu.push(tOn.perCpu);
  fenceFigures.ratio.push(tOn.perCpu / tOff.perCpu);
  fenceRows.push([`without the rule (round ${round})`, Number(off.p50.toFixed(3)), Number(off.p99.toFixed(3)), Math.round(tOff.rps), Math.round(tOff.perCpu)]);
  fenceRows.push([`FencingPolicy check (round ${round})`, Number(on.p50.toFixed(3)), Number(on.p99.toFixed(3)), Math.round(tOn.rps), Math.round(tOn.perCpu)]);
}
// The check's own round trip, without the sidecar's hops: what the added latency is made of
// once the processes involved are not waiting for a core.
for (const c of sluiceClients) loadScriptsOn(c, [ACCEPT_TOKEN]);
const fence = new TokenFence(sluiceClients);
const direct = new Samples();
for (let i = 1; i <= FENCE_SEQUENTIAL; i++) {
  const t0 = performance.now();
  if ((await fence.check('sluice:{bench/fence/Lock/direct}:accepted', i)).result !== 'accepted') throw new Error('direct check refused');
  direct.push(performance.now() - t0);
}
fenceRows.push(['TokenFence.check alone, in the bench process', Number(percentile(direct.values(), 50).toFixed(3)), Number(percentile(direct.values(), 99).toFixed(3)), '', '']);
printTable(
  `Fencing check at the protected sidecar, 3 lock nodes (sequential ×${FENCE_SEQUENTIAL}; throughput with ${CONCURRENCY} concurrent for ${FENCE_MS / 1000} s)`,
  ['sidecar', 'p50 ms', 'p99 ms', 'requests/s', 'requests per sidecar CPU-second'],
  fenceRows,
);

await group.stopAll();

const s = figures[sluice.name]!;
const p = figures[pkg.name]!;
console.log('\nAims');
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(`  acquire+release p50 ${s.p50.toFixed(3)} ms (aim ≤ 1 ms); throughput ${(mean(s.ops) / mean(p.ops)).toFixed(2)}× the redlock package over 2 rounds (aim ≥ 1.5×)`);
console.log(`  failover after kill -9: max ${Math.round(Math.max(...failovers))} ms (aim ≤ ttl + renewEvery = ${TTL_MS + RENEW_MS} ms)`);
const worst = (xs: number[]) => Math.max(...xs);
console.log(`  fencing check adds p50 ${fenceFigures.added50.map((x) => Math.round(x)).join(' / ')} µs in rounds 1 / 2 (aim ≤ 500 µs; its round trip alone ${Math.round(percentile(direct.values(), 50) * 1000)} µs), p99 ${Math.round(worst(fenceFigures.added99))} µs; ${Math.round(Math.min(...fenceFigures.perCpu))} checked requests per sidecar CPU-second (${Math.min(...fenceFigures.ratio).toFixed(2)}× the unchecked sidecar's)`);
for (const c of adminClients) c.disconnect();
await Promise.all(nodes.map((n) => n.stop()));
process.exit(0);
