// Footprint benchmark: what a sidecar costs the pod it sits in, side by side in one run.
//   - idle RSS and anonymous memory (what the pod's cgroup is charged for): sluice-proxy with one
//     local rule, sluice-proxy with the demo's whole config (Redis, lock nodes, queue, leader
//     election), nginx (1 worker) and a bare Node process running an empty script (the floor);
//   - peak RSS and CPU per 1,000 requests/s during a fixed-rate load: HTTP through the proxy
//     (autocannon, paced with overallRate) and gRPC unary calls (a paced grpc-js client).
// The sidecar runs exactly as its container image runs it (sidecar/Dockerfile): built as JavaScript
// by scripts/build-sidecar.ts, `node sidecar/bin/sluice-proxy.js` with NODE_ENV=production and
// NODE_DISABLE_COMPILE_CACHE=1; the .ts sources (what development runs) are measured idle beside it.
//
// Environment knobs (all optional):
//   BENCH_SECONDS=30  length of each fixed-rate load
//   BENCH_RATE=1000   requests (or calls) per second
//   BENCH_IDLE_ONLY=1 only the idle figures (quick before/after runs)
//   BENCH_LOAD_TS=1   the loads go through the .ts sources instead of the built JavaScript
//   BENCH_SIDECAR_NODE_OPTIONS='--max-semi-space-size=1'  V8 flags for the sidecar under trial
//   BENCH_SIDECAR_PROF=<dir>  the loaded sidecar writes a V8 CPU profile there (bench/lib/cpuprofile-top.ts)
//   BENCH_LOADS=http,grpc     which fixed-rate loads to run (nginx runs the same ones)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { canConnect, freePorts } from '../lib/net.ts';
import { groupCpuSeconds } from './lib/cpu.ts';
import { startNginx } from './lib/nginx.ts';
import { NODE, ProcessGroup, sleep, waitForHttp, waitUntil, type Child } from './lib/processes.ts';
import { printAims, printMarkdownTable, printTable, type Cell } from './lib/table.ts';
import { RedisServer } from '../test/helpers/redis-server.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const IDLE_ONLY = process.env.BENCH_IDLE_ONLY === '1';
const LOAD_BUILT = process.env.BENCH_LOAD_TS !== '1';
const PROF_DIR = process.env.BENCH_SIDECAR_PROF;
const LOADS = new Set((process.env.BENCH_LOADS ?? 'http,grpc').split(','));
const ROOT = resolve(import.meta.dirname, '..');
const SIDECAR_BIN = 'sidecar/bin/sluice-proxy.ts';
const AUTOCANNON = resolve(ROOT, 'node_modules/autocannon/autocannon.js');
/** How long a process sits after start-up before its idle memory is read (lazy work settles). */
const IDLE_SETTLE_MS = 3_000;
const MiB = 1024 * 1024;

/** The environment the sidecar image sets (sidecar/Dockerfile). */
const IMAGE_ENV = { ...process.env, NODE_ENV: 'production', NODE_DISABLE_COMPILE_CACHE: '1' };
/** V8 settings under trial, as the injector would set them on the container (NODE_OPTIONS). */
const SIDECAR_ENV = { ...IMAGE_ENV, ...(process.env.BENCH_SIDECAR_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_SIDECAR_NODE_OPTIONS } : {}) };

/** One local rule: the smallest useful sidecar. */
const ONE_LOCAL_RULE = `apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: bench-limit, namespace: bench}
spec:
  selector: {}
  rules:
    - name: every-request
      limit: {requests: 100000000, per: 1s, algorithm: TokenBucket}
      scope: Local
`;

/** The demo's config with every selector opened up, so one sidecar runs all of it. */
function demoConfigForOneSidecar(): string {
  const yaml = readFileSync(resolve(ROOT, 'examples/demo/sluice.yaml'), 'utf8');
  return yaml.replace(/selector:\n\s+matchLabels: \{app: [\w-]+\}/g, 'selector: {}');
}

interface Memory {
  rss: number;
  anon: number;
}

function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon') };
}

/** Every pid in process group `pgid` (nginx: master and worker). */
function groupPids(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === pgid) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Memory of a whole process group: what a container holding it would be charged. */
function groupMemory(pgid: number): Memory {
  let rss = 0;
  let anon = 0;
  for (const pid of groupPids(pgid)) {
    try {
      const m = memoryOf(pid);
      rss += m.rss;
      anon += m.anon;
    } catch {
      // exited meanwhile
    }
  }
  return { rss, anon };
}

interface Ports {
  http: number;
  grpc: number;
  admin: number;
  localApi: number;
}

async function startSluice(group: ProcessGroup, name: string, configYaml: string, dir: string, app: { http: number; grpc?: number }, extra: string[] = [], from: { cwd: string; bin: string } = { cwd: ROOT, bin: SIDECAR_BIN }, nodeArgs: string[] = []): Promise<{ child: Child; ports: Ports }> {
  const config = join(dir, `${name}.yaml`);
  writeFileSync(config, configYaml);
  const [http, grpc, admin, localApi] = (await freePorts(4)) as [number, number, number, number];
  const child = group.start(name, NODE, [
    ...nodeArgs, from.bin, '--config', config,
    '--app-http', `127.0.0.1:${app.http}`, ...(app.grpc ? ['--app-grpc', `127.0.0.1:${app.grpc}`] : []),
    '--listen-http', `127.0.0.1:${http}`, '--listen-grpc', `127.0.0.1:${grpc}`,
    '--admin', `127.0.0.1:${admin}`, '--local-api', `127.0.0.1:${localApi}`,
    '--log-level', 'warn', '--shutdown-grace', '1s', ...extra,
  ], { cwd: from.cwd, env: SIDECAR_ENV });
  await Promise.race([
    waitForHttp(`http://127.0.0.1:${admin}/readyz`, 200, 30_000),
    child.exited.then((code) => {
      throw new Error(`${name} exited (${code}) before it was ready:\n${child.stderrTail()}`);
    }),
  ]);
  return { child, ports: { http, grpc, admin, localApi } };
}

/** nginx with one worker: HTTP/1.1 reverse proxy on one port, grpc_pass (h2c) on another. */
async function startNginxBoth(group: ProcessGroup, app: { http: number; grpc: number }): Promise<{ child: Child; http: number; grpc: number; cleanup(): void }> {
  const [http, grpc] = (await freePorts(2)) as [number, number];
  const dir = mkdtempSync(join(tmpdir(), 'bench-nginx-'));
  const conf = `daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    keepalive_requests 1000000;
    upstream app { server 127.0.0.1:${app.http}; keepalive 64; keepalive_requests 1000000; }
    upstream grpcapp { server 127.0.0.1:${app.grpc}; keepalive 64; }
    server {
        listen 127.0.0.1:${http};
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
    server {
        listen 127.0.0.1:${grpc} http2;
        location / { grpc_pass grpc://grpcapp; }
    }
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child = group.start('nginx', process.env.BENCH_NGINX ?? '/usr/sbin/nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')]);
  await Promise.race([
    waitUntil('nginx', async () => (await canConnect(http)) && (await canConnect(grpc)), 10_000),
    child.exited.then((code) => {
      throw new Error(`nginx exited (${code}): ${child.stderrTail()}`);
    }),
  ]);
  return { child, http, grpc, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

interface LoadFigures {
  peakRss: number;
  peakAnon: number;
  cpuSeconds: number;
  /** Requests answered (HTTP 2xx) or calls OK (gRPC). */
  done: number;
  errors: number;
  seconds: number;
}

/** Runs `load` (a client process) while sampling the proxy's memory; CPU is the proxy's only. */
async function underLoad(group: ProcessGroup, proxyPgid: number, name: string, args: string[]): Promise<LoadFigures & { out: string }> {
  let peakRss = 0;
  let peakAnon = 0;
  const sampler = setInterval(() => {
    const m = groupMemory(proxyPgid);
    peakRss = Math.max(peakRss, m.rss);
    peakAnon = Math.max(peakAnon, m.anon);
  }, 100);
  const cpu0 = groupCpuSeconds(proxyPgid);
  const t0 = performance.now();
  const client = group.start(name, NODE, args, { cwd: ROOT });
  let out = '';
  client.proc.stdout?.removeAllListeners('data');
  client.proc.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  const code = await client.exited;
  const seconds = (performance.now() - t0) / 1000;
  const cpuSeconds = groupCpuSeconds(proxyPgid) - cpu0;
  clearInterval(sampler);
  if (code !== 0) throw new Error(`${name} exited (${code}): ${client.stderrTail()}`);
  return { peakRss, peakAnon, cpuSeconds, done: 0, errors: 0, seconds, out };
}

async function httpLoad(group: ProcessGroup, pgid: number, port: number): Promise<LoadFigures> {
  const r = await underLoad(group, pgid, 'autocannon', [
    AUTOCANNON, '-c', '10', '-R', String(RATE), '-d', String(SECONDS), '-j', `http://127.0.0.1:${port}/`,
  ]);
  const json = JSON.parse(r.out) as { '2xx': number; non2xx: number; errors: number; timeouts: number; duration: number };
  return { ...r, done: json['2xx'], errors: json.non2xx + json.errors + json.timeouts, seconds: json.duration };
}

async function grpcLoad(group: ProcessGroup, pgid: number, port: number): Promise<LoadFigures> {
  const r = await underLoad(group, pgid, 'grpc load', [resolve(ROOT, 'bench/lib/grpc-paced-load.ts'), `127.0.0.1:${port}`, String(RATE), String(SECONDS)]);
  const json = JSON.parse(r.out.trim().split('\n').at(-1) ?? '{}') as { ok: number; errors: Record<string, number>; seconds: number };
  return { ...r, done: json.ok, errors: Object.values(json.errors).reduce((a, b) => a + b, 0), seconds: json.seconds };
}

async function main(): Promise<void> {
  const group = new ProcessGroup();
  const cleanups: (() => void | Promise<void>)[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'bench-footprint-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const load0 = loadavg();
  try {
    const [httpApp, grpcApp] = (await freePorts(2)) as [number, number];
    const app = { http: httpApp, grpc: grpcApp };
    group.start('hello upstream', NODE, [resolve(ROOT, 'bench/lib/http-hello-server.ts'), String(httpApp)]);
    group.start('UserService (grpc-js)', NODE, [resolve(ROOT, 'examples/user-service/server.ts'), '--port', String(grpcApp)], { cwd: ROOT });
    await waitUntil('the upstreams', async () => (await canConnect(httpApp)) && (await canConnect(grpcApp)));

    // Idle: each process on its own, then read after it settles.
    const idle: { name: string; mem: Memory }[] = [];
    const empty = join(dir, 'empty.js');
    writeFileSync(empty, 'setInterval(() => {}, 1 << 30);\n');
    const emptyTs = join(dir, 'empty.ts');
    writeFileSync(emptyTs, 'setInterval((): void => {}, 1 << 30);\n');
    for (const [name, file] of [['bare node (empty .js)', empty], ['bare node (empty .ts)', emptyTs]] as const) {
      const c = group.start(name, NODE, [file], { env: IMAGE_ENV });
      await sleep(IDLE_SETTLE_MS);
      idle.push({ name, mem: groupMemory(c.pid) });
      await group.stop(c);
    }

    const nginx = await startNginxBoth(group, app);
    cleanups.push(nginx.cleanup);
    await sleep(IDLE_SETTLE_MS);
    idle.push({ name: 'nginx (master + 1 worker)', mem: groupMemory(nginx.child.pid) });

    const redis = await RedisServer.start();
    const lockNodes = await Promise.all([1, 2, 3].map(() => RedisServer.start()));
    cleanups.push(() => redis.stop(), ...lockNodes.map((n) => () => n.stop()));
    const full = await startSluice(group, 'sluice-proxy (demo config)', demoConfigForOneSidecar(), dir, app, [
      '--redis', redis.url, '--lock-nodes', lockNodes.map((n) => n.url).join(','),
    ]);
    await sleep(IDLE_SETTLE_MS);
    idle.push({ name: 'sluice-proxy, demo config (Redis, locks, queue)', mem: groupMemory(full.child.pid) });
    await group.stop(full.child);

    // HTTP only (no --app-grpc): what an HTTP app's pod pays.
    const httpOnly = await startSluice(group, 'sluice-proxy (one local rule, HTTP)', ONE_LOCAL_RULE, dir, { http: app.http });
    await sleep(IDLE_SETTLE_MS);
    idle.push({ name: 'sluice-proxy, one local rule, HTTP only, .ts sources', mem: groupMemory(httpOnly.child.pid) });
    await group.stop(httpOnly.child);

    // The same, built as JavaScript ahead of time (scripts/build-sidecar.ts), as the image runs it;
    // the difference is what type stripping at start-up costs.
    const built = join(dir, 'built');
    execFileSync(NODE, [resolve(ROOT, 'scripts/build-sidecar.ts'), built], { cwd: ROOT, stdio: 'inherit' });
    symlinkSync(resolve(ROOT, 'node_modules'), join(built, 'node_modules'));
    const js = await startSluice(group, 'sluice-proxy (built JS)', ONE_LOCAL_RULE, dir, { http: app.http }, [], { cwd: built, bin: 'sidecar/bin/sluice-proxy.js' });
    await sleep(IDLE_SETTLE_MS);
    const sluiceIdle = groupMemory(js.child.pid);
    idle.push({ name: 'sluice-proxy, one local rule, HTTP only, built JS (the image)', mem: sluiceIdle });
    await group.stop(js.child);

    // The one the loads go through: HTTP and gRPC listeners.
    const sluice = await startSluice(group, 'sluice-proxy (one local rule)', ONE_LOCAL_RULE, dir, app, [],
      LOAD_BUILT ? { cwd: built, bin: 'sidecar/bin/sluice-proxy.js' } : undefined, PROF_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROF_DIR] : []);
    await sleep(IDLE_SETTLE_MS);
    idle.push({ name: `sluice-proxy, one local rule, HTTP + gRPC${LOAD_BUILT ? ', built JS' : ''}`, mem: groupMemory(sluice.child.pid) });

    const idleRows: Cell[][] = idle.map(({ name, mem }) => [name, mem.rss / MiB, mem.anon / MiB]);
    printTable(`Idle memory (MiB; settled ${IDLE_SETTLE_MS / 1000} s after start)`, ['process', 'RSS', 'anonymous'], idleRows);
    const floor = idle[0]!.mem;
    console.log(`\n  sluice (one rule) / bare node: RSS ${(sluiceIdle.rss / floor.rss).toFixed(2)}×, anonymous ${(sluiceIdle.anon / floor.anon).toFixed(2)}×`);
    printMarkdownTable(['process', 'RSS MiB', 'anonymous MiB'], idleRows);

    const aims = [{ name: 'idle RSS, one local rule, HTTP only, as the image runs it (MiB)', value: sluiceIdle.rss / MiB, kind: 'atMost' as const, target: 60, format: (v: number) => v.toFixed(1) }];
    if (IDLE_ONLY) {
      printAims('Aims', aims);
      return;
    }

    // Fixed-rate loads, one contender at a time, the client in its own process.
    const runs: { name: string; f: LoadFigures }[] = [];
    const skipped: LoadFigures = { peakRss: NaN, peakAnon: NaN, cpuSeconds: NaN, done: NaN, errors: NaN, seconds: NaN };
    const http = LOADS.has('http');
    const grpc = LOADS.has('grpc');
    runs.push({ name: 'HTTP  sluice-proxy', f: http ? await httpLoad(group, sluice.child.pid, sluice.ports.http) : skipped });
    runs.push({ name: 'HTTP  nginx', f: http ? await httpLoad(group, nginx.child.pid, nginx.http) : skipped });
    runs.push({ name: 'gRPC  sluice-proxy', f: grpc ? await grpcLoad(group, sluice.child.pid, sluice.ports.grpc) : skipped });
    runs.push({ name: 'gRPC  nginx (grpc_pass)', f: grpc ? await grpcLoad(group, nginx.child.pid, nginx.grpc) : skipped });
    const loadRows: Cell[][] = runs.map(({ name, f }) => {
      const rate = f.done / f.seconds;
      return [name, rate, f.errors, f.peakRss / MiB, f.peakAnon / MiB, (f.cpuSeconds / f.seconds) / (rate / 1000), (f.cpuSeconds * 1e6) / Math.max(1, f.done)];
    });
    const headers = ['load', 'done/s', 'errors', 'peak RSS MiB', 'peak anon MiB', 'vCPU per 1k/s', 'CPU µs/call'];
    printTable(`Fixed-rate load: ${RATE}/s for ${SECONDS} s (the proxy's own CPU and memory)`, headers, loadRows);
    printMarkdownTable(headers, loadRows);
    const us = (i: number) => (runs[i]!.f.cpuSeconds * 1e6) / Math.max(1, runs[i]!.f.done);
    const vcpu = (i: number) => runs[i]!.f.cpuSeconds / runs[i]!.f.seconds / (runs[i]!.f.done / runs[i]!.f.seconds / 1000);
    console.log(`\n  CPU per call, sluice / nginx: HTTP ${(us(0) / us(1)).toFixed(2)}×, gRPC ${(us(2) / us(3)).toFixed(2)}×`);
    console.log(`  peak RSS, sluice / nginx: HTTP ${(runs[0]!.f.peakRss / runs[1]!.f.peakRss).toFixed(2)}×`);
    aims.push(
      { name: 'peak RSS at 1,000 HTTP req/s (MiB)', value: runs[0]!.f.peakRss / MiB, kind: 'atMost', target: 80, format: (v) => v.toFixed(1) },
      { name: 'vCPU per 1,000 HTTP req/s', value: vcpu(0), kind: 'atMost', target: 0.05, format: (v) => v.toFixed(3) },
      { name: 'gRPC CPU per unary call (µs; was 178)', value: us(2), kind: 'atMost', target: 89, format: (v) => v.toFixed(0) },
    );
    printAims('Aims', aims);
  } finally {
    await group.stopAll();
    for (const c of cleanups.reverse()) await c();
    const load1 = loadavg();
    console.log(`\nload average at start ${load0.map((l) => l.toFixed(2)).join(' ')}, at end ${load1.map((l) => l.toFixed(2)).join(' ')}`);
  }
}

await main();
