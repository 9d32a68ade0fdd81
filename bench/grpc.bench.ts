// gRPC benchmark: the example UserService reached straight and through the sluice
// sidecar, with the same grpc-js client process and concurrency, side by side in one run:
//   unary GetUser calls/s, and server-streaming ListUsers messages/s.
// The sidecar enforces the example's rules, with the rate limit raised out of reach, so every
// call runs the whole policy chain (limit, breaker, bulkhead) without being rejected.
//
// A second part puts the Go peers in the same run: the UserService served by grpc-go
// (bench/peers/grpcgo, GOMAXPROCS=1), reached directly, through the sidecar and through nginx's
// grpc_pass (1 worker) — calls/s and calls per proxy CPU-second.
//
// The client alternates between the two targets in short slices (bench/lib/grpc-load.ts), so
// load from other processes on the machine lands on both sides of each ratio alike.
//
// Environment knobs (all optional):
//   BENCH_SLICES=6         measured slices per target and mode (figures are medians of slices)
//   BENCH_SLICE_SECONDS=1  length of one slice
//   BENCH_CONCURRENCY=50   calls in flight (unary); streams in flight are a fifth of it
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { cpuDuring, groupCpuSeconds } from './lib/cpu.ts';
import { canConnect, freePorts } from '../lib/net.ts';
import { NODE, ProcessGroup, waitUntil } from './lib/processes.ts';
import { startSidecar, USER_SERVICE_POLICIES } from './lib/sidecar.ts';
import { startNginx } from './lib/nginx.ts';
import { peer } from './lib/peers.ts';
import { median, printAims, printMarkdownTable, printTable, type Cell } from './lib/table.ts';

const SLICES = Number(process.env.BENCH_SLICES ?? 6);
const SLICE_SECONDS = Number(process.env.BENCH_SLICE_SECONDS ?? 1);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 50);
const STREAMS = Math.max(1, Math.round(CONCURRENCY / 5));
const ROOT = resolve(import.meta.dirname, '..');


interface LoadResult {
  /** Per-slice rates: [direct slices, through slices]. */
  rates: [number[], number[]];
  totals: [number, number];
  errors: Record<string, number>;
}

async function main(): Promise<void> {
  const group = new ProcessGroup();
  let cleanup = () => {};
  try {
    const [appPort, unusedHttp] = (await freePorts(2)) as [number, number];
    const app = group.start('UserService (grpc-js)', NODE, [resolve(ROOT, 'examples/user-service/server.ts'), '--port', String(appPort)]);
    await waitUntil('the UserService port', () => canConnect(appPort));
    const [grpcPort] = (await freePorts(1)) as [number];
    const sidecar = await startSidecar(group, 'sluice-proxy', {
      configYaml: USER_SERVICE_POLICIES,
      appHttp: `127.0.0.1:${unusedHttp}`,
      extraArgs: ['--app-grpc', `127.0.0.1:${appPort}`, '--listen-grpc', `127.0.0.1:${grpcPort}`],
    });
    cleanup = sidecar.cleanup;
    const targets = { direct: `127.0.0.1:${appPort}`, through: `127.0.0.1:${grpcPort}` } as const;

    // Each mode is one load process alternating between the two targets slice by slice; CPU is
    // read around it: the sidecar only works in "through" slices, the app in both.
    const run = async (mode: 'unary' | 'stream', concurrency: number) => {
      const appCpu0 = groupCpuSeconds(app.pid);
      const { result, cpuSeconds: sidecarCpu } = await cpuDuring(sidecar.pid, async () => {
        const load = group.start(`grpc-load ${mode}`, NODE, [resolve(ROOT, 'bench/lib/grpc-load.ts'), targets.direct, targets.through, mode, String(concurrency), String(SLICE_SECONDS), String(SLICES)]);
        return JSON.parse(await load.waitForLine(/^\{/, (SLICES * SLICE_SECONDS * 2 + 30) * 1000)) as LoadResult;
      });
      if (Object.keys(result.errors).length) throw new Error(`${mode} calls failed: ${JSON.stringify(result.errors)}`);
      return { ...result, appCpu: groupCpuSeconds(app.pid) - appCpu0, sidecarCpu };
    };

    const unary = await run('unary', CONCURRENCY);
    const stream = await run('stream', STREAMS);
    const [directUnary, throughUnary] = unary.rates.map(median) as [number, number];
    const [directStream, throughStream] = stream.rates.map(median) as [number, number];
    const unaryRatio = throughUnary / directUnary;
    const streamRatio = throughStream / directStream;
    const appUsPerCall = (unary.appCpu * 1e6) / (unary.totals[0] + unary.totals[1]);
    const sidecarUsPerCall = (unary.sidecarCpu * 1e6) / unary.totals[1];
    const headers = ['path', 'GetUser calls/s', 'ListUsers messages/s', 'CPU µs per GetUser call'];
    const rows: Cell[][] = [
      ['direct to grpc-js', directUnary, directStream, `${appUsPerCall.toFixed(0)} (app)`],
      ['through sluice-proxy', throughUnary, throughStream, `+ ${sidecarUsPerCall.toFixed(0)} (sidecar)`],
      ['ratio through / direct', unaryRatio, streamRatio, ''],
    ];
    const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.versions.node}`;
    printTable(`gRPC: UserService direct vs through the sidecar — ${CONCURRENCY} unary calls / ${STREAMS} streams in flight, one grpc-js client process, median of ${SLICES} alternating ${SLICE_SECONDS}s slices per target (${machine})`, headers, rows);
    console.log('\nMarkdown:');
    printMarkdownTable(headers, rows);
    printAims('Aims', [
      { name: 'unary calls/s through / direct', value: unaryRatio, kind: 'atLeast', target: 0.5 },
      { name: 'stream messages/s through / direct', value: streamRatio, kind: 'atLeast', target: 0.5 },
    ]);
    await group.stop(sidecar.child);
    await group.stop(app);
    await goPart(group, (c) => (cleanup = chain(cleanup, c)));
  } finally {
    await group.stopAll();
    cleanup();
  }
}

const chain = (a: () => void, b: () => void) => () => {
  a();
  b();
};

/**
 * grpc-go as the app; the sidecar and nginx grpc_pass as the proxies in front of it. Two load
 * processes: direct ↔ through the sidecar (the ratio through / direct), then nginx ↔ the sidecar
 * (the proxies side by side). CPU of each proxy's process group is read around the run it is in;
 * each proxy only works in its own slices, so its CPU per call is over its own calls.
 */
async function goPart(group: ProcessGroup, onCleanup: (c: () => void) => void): Promise<void> {
  const grpcgo = peer('grpcgo');
  if (!grpcgo) return;
  const [appPort, unusedHttp, grpcPort, nginxPort] = (await freePorts(4)) as [number, number, number, number];
  const app = group.start('UserService (grpc-go)', grpcgo.bin, [`127.0.0.1:${appPort}`], { env: { ...process.env, GOMAXPROCS: '1' } });
  await app.waitForLine(/^listening/);
  const sidecar = await startSidecar(group, 'sluice-proxy → grpc-go', {
    configYaml: USER_SERVICE_POLICIES,
    appHttp: `127.0.0.1:${unusedHttp}`,
    extraArgs: ['--app-grpc', `127.0.0.1:${appPort}`, '--listen-grpc', `127.0.0.1:${grpcPort}`],
  });
  onCleanup(sidecar.cleanup);
  const nginx = await startNginx(group, 'nginx grpc_pass → grpc-go', nginxPort, { grpcPassTo: `127.0.0.1:${appPort}`, keepalive: 64 });
  onCleanup(nginx.cleanup);
  const t = { direct: `127.0.0.1:${appPort}`, sluice: `127.0.0.1:${grpcPort}`, nginx: `127.0.0.1:${nginxPort}` };
  const load = async (a: string, b: string, pids: number[]) => {
    const before = pids.map(groupCpuSeconds);
    const child = group.start('grpc-load (Go app)', NODE, [resolve(ROOT, 'bench/lib/grpc-load.ts'), a, b, 'unary', String(CONCURRENCY), String(SLICE_SECONDS), String(SLICES)]);
    const result = JSON.parse(await child.waitForLine(/^\{/, (SLICES * SLICE_SECONDS * 2 + 30) * 1000)) as LoadResult;
    if (Object.keys(result.errors).length) throw new Error(`calls to the Go app failed: ${JSON.stringify(result.errors)}`);
    return { ...result, cpu: pids.map((p, i) => groupCpuSeconds(p) - (before[i] ?? 0)) };
  };
  const one = await load(t.direct, t.sluice, [app.pid, sidecar.pid]);
  const two = await load(t.nginx, t.sluice, [nginx.child.pid, sidecar.pid]);
  const [direct, throughSluice] = one.rates.map(median) as [number, number];
  const [throughNginx, throughSluice2] = two.rates.map(median) as [number, number];
  const appUs = ((one.cpu[0] ?? 0) * 1e6) / (one.totals[0] + one.totals[1]);
  const sluicePerCpu = [one.totals[1] / (one.cpu[1] ?? NaN), two.totals[1] / (two.cpu[1] ?? NaN)];
  const nginxPerCpu = two.totals[0] / (two.cpu[0] ?? NaN);
  const rows: Cell[][] = [
    ['direct to grpc-go', direct, `app ${appUs.toFixed(0)} µs/call`, ''],
    ['through sluice-proxy (run 1)', throughSluice, '', Math.round(sluicePerCpu[0] ?? NaN)],
    ['through nginx grpc_pass, 1 worker (run 2)', throughNginx, '', Math.round(nginxPerCpu)],
    ['through sluice-proxy (run 2)', throughSluice2, '', Math.round(sluicePerCpu[1] ?? NaN)],
  ];
  const headers = ['path', 'GetUser calls/s', 'app CPU', 'calls per proxy CPU-second'];
  printTable(`gRPC with a Go app: ${grpcgo.version} (GOMAXPROCS=1), ${CONCURRENCY} unary calls in flight from one grpc-js client process; run 1 alternates direct ↔ sluice, run 2 nginx ↔ sluice (median of ${SLICES} ${SLICE_SECONDS}s slices each)`, headers, rows);
  console.log('\nMarkdown:');
  printMarkdownTable(headers, rows);
  console.log('\nRatios (no aims set; reported)');
  console.log(`  through sluice / direct, calls/s: ${(throughSluice / direct).toFixed(2)}`);
  console.log(`  sluice / nginx grpc_pass, calls/s (run 2): ${(throughSluice2 / throughNginx).toFixed(2)}`);
  console.log(`  sluice / nginx grpc_pass, calls per proxy CPU-second: ${((sluicePerCpu[1] ?? NaN) / nginxPerCpu).toFixed(2)} (${Math.round(sluicePerCpu[1] ?? NaN)} vs ${Math.round(nginxPerCpu)})`);
}

await main();
