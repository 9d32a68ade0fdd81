// Before/after: this checkout's sidecar against another checkout's (a base commit), in one run,
// on the same upstreams, with the load alternating between the two in short rounds. A change that
// adds work to every request is judged by this — two separate runs of bench:http on a shared
// machine differ by more than the few per cent it has to show.
//
//   git worktree add /tmp/sluice-base <base commit> && ln -s "$PWD/node_modules" /tmp/sluice-base/
//   BENCH_BASE=/tmp/sluice-base npm run bench:regression
//
// Three paths, each through two sidecars (base, this) with the same config:
//   HTTP  wrk -t1 -c50 to an nginx static upstream, with no policies and with a token bucket + breaker
//   WS    50 echo clients, one 64 B message in flight each, through WebSocket limits
//   gRPC  unary GetUser calls to the example UserService with its limit + breaker + bulkhead
// Figures: the proxy process's CPU per request / message / call (steadiest on a shared machine)
// and the throughput; per round the after/base ratio, then the median of those ratios.
//
// Environment knobs (all optional but BENCH_BASE):
//   BENCH_BASE=dir         the other checkout (its node_modules must resolve, e.g. a symlink)
//   BENCH_ROUNDS=8         rounds per path (each: base then this, or this then base, alternating)
//   BENCH_SECONDS=3        seconds per HTTP / WebSocket run
//   BENCH_GRPC_SLICES=8    alternating 1 s slices per sidecar for gRPC
//   BENCH_CONNECTIONS=50   wrk connections for HTTP (1 measures the bare path: no batching of reads)
//   BENCH_PATHS=http,ws,grpc  which paths to compare
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { cpuDuring, groupCpuSeconds } from './lib/cpu.ts';
import { startNginx } from './lib/nginx.ts';
import { canConnect, freePorts } from '../lib/net.ts';
import { NODE, ProcessGroup, sleep, waitForHttp, waitUntil } from './lib/processes.ts';
import { EVERY_REQUEST_POLICIES, startSidecar, UNREACHABLE_WEBSOCKET_LIMITS, USER_SERVICE_POLICIES, type SidecarHandle } from './lib/sidecar.ts';
import { median, printMarkdownTable, printTable, type Cell } from './lib/table.ts';
import { runWrk } from './lib/wrk.ts';

const BASE = process.env.BENCH_BASE ? resolve(process.env.BENCH_BASE) : undefined;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const GRPC_SLICES = Number(process.env.BENCH_GRPC_SLICES ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const PATHS = new Set((process.env.BENCH_PATHS ?? 'http,ws,grpc').split(','));
const ROOT = resolve(import.meta.dirname, '..');
const LIB = resolve(import.meta.dirname, 'lib');


/** One measured figure, per round, for both sides. */
interface Paired {
  name: string;
  /** true: smaller is better (CPU per unit); false: larger is better (throughput). */
  lowerIsBetter: boolean;
  base: number[];
  after: number[];
}

function paired(name: string, lowerIsBetter: boolean): Paired {
  return { name, lowerIsBetter, base: [], after: [] };
}

async function main(): Promise<void> {
  if (!BASE || !existsSync(resolve(BASE, 'sidecar/bin/sluice-proxy.ts'))) {
    console.error('BENCH_BASE must name another checkout of this repository (see the head of bench/regression.bench.ts)');
    process.exitCode = 2;
    return;
  }
  const group = new ProcessGroup();
  const cleanups: (() => void)[] = [];
  const results: Paired[] = [];
  const both = async (name: string, opts: Parameters<typeof startSidecar>[2]): Promise<[SidecarHandle, SidecarHandle]> => {
    const base = await startSidecar(group, `${name} (base)`, { ...opts, checkout: BASE });
    const after = await startSidecar(group, `${name} (this)`, opts);
    cleanups.push(base.cleanup, after.cleanup);
    return [base, after];
  };
  try {
    console.log(`Before/after: base ${BASE} vs this checkout ${ROOT}`);
    console.log(`${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}, load average ${loadavg()[0]?.toFixed(2)} at start`);
    const [upstreamPort, echoPort, grpcAppPort, unusedHttp] = (await freePorts(4)) as [number, number, number, number];

    // --- HTTP ---
    if (PATHS.has('http')) {
    const upstream = await startNginx(group, 'upstream (nginx static)', upstreamPort, { staticBody: 'hello from the upstream\n' });
    cleanups.push(upstream.cleanup);
    const app = `127.0.0.1:${upstreamPort}`;
    await waitForHttp(`http://${app}/`);
    for (const [label, config] of [['no policies', ''], ['token bucket + breaker', EVERY_REQUEST_POLICIES]] as const) {
      const sides = await both(`sluice http ${label}`, { configYaml: config, appHttp: app });
      const cpu = paired(`HTTP ${label}, ${CONNECTIONS} conn: sidecar CPU µs/req`, true);
      const rps = paired(`HTTP ${label}, ${CONNECTIONS} conn: req/s`, false);
      for (const s of sides) await runWrk({ url: `http://127.0.0.1:${s.httpPort}/`, connections: CONNECTIONS, durationS: 2 });
      for (let round = 0; round < ROUNDS; round++) {
        for (const which of round % 2 === 0 ? [0, 1] : [1, 0]) {
          const s = sides[which] as SidecarHandle;
          const { result, cpuSeconds } = await cpuDuring(s.pid, () => runWrk({ url: `http://127.0.0.1:${s.httpPort}/`, connections: CONNECTIONS, durationS: SECONDS }));
          if (result.non2xx + result.socketErrors > 0) throw new Error(`HTTP ${label}: ${result.non2xx} non-2xx, ${result.socketErrors} socket errors`);
          (which === 0 ? cpu.base : cpu.after).push((cpuSeconds * 1e6) / result.requests);
          (which === 0 ? rps.base : rps.after).push(result.requestsPerSec);
          await sleep(100);
        }
        progress(cpu, round);
      }
      results.push(cpu, rps);
      for (const s of sides) await group.stop(s.child);
    }
    }

    // --- WebSocket ---
    if (PATHS.has('ws')) {
    const echo = group.start('ws echo server', NODE, [`${LIB}/ws-echo-server.ts`, String(echoPort)]);
    await echo.waitForLine(/^listening/);
    const wsSides = await both('sluice ws', { configYaml: UNREACHABLE_WEBSOCKET_LIMITS, appHttp: `127.0.0.1:${echoPort}` });
    const wsCpu = paired('WebSocket: sidecar CPU µs/message', true);
    const wsRate = paired('WebSocket: echo messages/s', false);
    for (let round = 0; round < ROUNDS; round++) {
      for (const which of round % 2 === 0 ? [0, 1] : [1, 0]) {
        const s = wsSides[which] as SidecarHandle;
        const { result, cpuSeconds } = await cpuDuring(s.pid, async () => {
          const load = group.start('ws load', NODE, [`${LIB}/ws-echo-load.ts`, `ws://127.0.0.1:${s.httpPort}/ws`, '50', String(SECONDS), '64', '0']);
          const line = await load.waitForLine(/^\{/, (SECONDS + 30) * 1000);
          await load.exited;
          return JSON.parse(line) as { messages: number; messagesPerSec: number; errors: number };
        });
        if (result.errors > 0) throw new Error(`WebSocket: ${result.errors} client errors`);
        (which === 0 ? wsCpu.base : wsCpu.after).push((cpuSeconds * 1e6) / result.messages);
        (which === 0 ? wsRate.base : wsRate.after).push(result.messagesPerSec);
      }
      progress(wsCpu, round);
    }
    results.push(wsCpu, wsRate);
    for (const s of wsSides) await group.stop(s.child);
    }

    // --- gRPC: one load process alternating 1 s slices between the two sidecars ---
    if (PATHS.has('grpc')) {
    group.start('UserService (grpc-js)', NODE, [resolve(ROOT, 'examples/user-service/server.ts'), '--port', String(grpcAppPort)]);
    await waitUntil('the UserService port', () => canConnect(grpcAppPort));
    const grpcSides: SidecarHandle[] = [];
    const grpcPorts: number[] = [];
    for (const checkout of [BASE, undefined]) {
      const [port] = (await freePorts(1)) as [number];
      const s = await startSidecar(group, `sluice grpc (${checkout ? 'base' : 'this'})`, {
        configYaml: USER_SERVICE_POLICIES, appHttp: `127.0.0.1:${unusedHttp}`, checkout,
        extraArgs: ['--app-grpc', `127.0.0.1:${grpcAppPort}`, '--listen-grpc', `127.0.0.1:${port}`],
      });
      cleanups.push(s.cleanup);
      grpcSides.push(s);
      grpcPorts.push(port);
    }
    const cpu0 = grpcSides.map((s) => groupCpuSeconds(s.pid));
    const load = group.start('grpc-load', NODE, [resolve(ROOT, 'bench/lib/grpc-load.ts'), `127.0.0.1:${grpcPorts[0]}`, `127.0.0.1:${grpcPorts[1]}`, 'unary', '50', '1', String(GRPC_SLICES)]);
    const grpc = JSON.parse(await load.waitForLine(/^\{/, (GRPC_SLICES * 2 + 30) * 1000)) as { rates: [number[], number[]]; totals: [number, number]; errors: Record<string, number> };
    if (Object.keys(grpc.errors).length) throw new Error(`gRPC calls failed: ${JSON.stringify(grpc.errors)}`);
    const grpcCpu = grpcSides.map((s, i) => ((groupCpuSeconds(s.pid) - (cpu0[i] as number)) * 1e6) / grpc.totals[i as 0 | 1]);
    // CPU is read over the whole alternating run, so it is one figure per side, not per slice.
    results.push({ name: 'gRPC unary: sidecar CPU µs/call (whole run)', lowerIsBetter: true, base: [grpcCpu[0] as number], after: [grpcCpu[1] as number] });
    results.push({ name: 'gRPC unary: calls/s', lowerIsBetter: false, base: grpc.rates[0], after: grpc.rates[1] });
    }

    // --- report ---
    // Each round's two runs are neighbours in time, so their ratio sheds most of the machine's
    // drift; the median of those ratios is the figure to judge by.
    const headers = ['figure', 'base (median)', 'this (median)', 'median of round ratios', 'change'];
    const rows: Cell[][] = results.map((r) => {
      const ratio = median(r.after.map((a, i) => a / (r.base[i] as number)));
      const worse = r.lowerIsBetter ? ratio - 1 : 1 - ratio;
      return [r.name, median(r.base), median(r.after), ratio.toFixed(3), worse > 0 ? `${(worse * 100).toFixed(1)} % worse` : `${(-worse * 100).toFixed(1)} % better`];
    });
    printTable(`Before/after, ${ROUNDS} alternating rounds per path (load average ${loadavg()[0]?.toFixed(2)} at the end)`, headers, rows);
    console.log('\nMarkdown (for bench/README.md):\n');
    printMarkdownTable(headers, rows);
  } finally {
    await group.stopAll();
    for (const c of cleanups) c();
  }
}

function progress(p: Paired, round: number): void {
  const b = p.base.at(-1) as number;
  const a = p.after.at(-1) as number;
  console.log(`  ${p.name}, round ${round + 1}/${ROUNDS}: base ${b.toFixed(1)}, this ${a.toFixed(1)} (${(a / b).toFixed(3)})   load ${loadavg()[0]?.toFixed(2)}`);
}

main().catch((err: Error) => {
  console.error(`\nregression bench failed: ${err.stack ?? err.message}`);
  process.exitCode = 1;
});
