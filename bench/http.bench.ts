// HTTP benchmark: the same upstream reached directly, through a bare http-proxy, through nginx,
// through Go's httputil.ReverseProxy (GOMAXPROCS=1, bench/peers/goproxy), and through the sluice
// sidecar with and without policies — side by side in one run, printed
// as req/s, latency and the ratios it aims at. See bench/README.md.
//
// Environment knobs (all optional):
//   BENCH_ROUNDS=3        rounds over all cases (figures are medians of rounds)
//   BENCH_SECONDS=3       measured seconds per loaded run (each case gets one 2 s warm-up first)
//   BENCH_CONNECTIONS=50  wrk connections for the loaded runs (one wrk thread: the machine has 2 cores)
//   BENCH_UNLOADED_SECONDS=1  seconds of each single-connection latency run (whole seconds: wrk)
//   BENCH_UPSTREAM=nginx  the upstream: `nginx` (static 200 from one nginx worker) or `node` (node:http)
//   BENCH_CPU_PROF=dir    write a V8 CPU profile of both sidecars into dir (read with DevTools)
import { mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { cpuDuring } from './lib/cpu.ts';
import { startNginx } from './lib/nginx.ts';
import { freePorts } from '../lib/net.ts';
import { NODE, ProcessGroup, sleep, waitForHttp } from './lib/processes.ts';
import { peer } from './lib/peers.ts';
import { EVERY_REQUEST_POLICIES, startSidecar } from './lib/sidecar.ts';
import { aimMet, formatMicros, median, printAims, printMarkdownTable, printTable, type Aim, type Cell } from './lib/table.ts';
import { runWrk, type WrkResult } from './lib/wrk.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const UNLOADED_SECONDS = Number(process.env.BENCH_UNLOADED_SECONDS ?? 1);
const WARMUP_SECONDS = 2;
const UPSTREAM = process.env.BENCH_UPSTREAM ?? 'nginx';
const PROFILE_DIR = process.env.BENCH_CPU_PROF ? resolve(process.env.BENCH_CPU_PROF) : undefined;
const LIB = resolve(import.meta.dirname, 'lib');

interface CaseResult {
  name: string;
  loaded: WrkResult;
  unloaded: WrkResult;
  /** CPU time of the proxy process (or of the upstream, for direct) per loaded request. */
  cpuUsPerRequest: number;
}

async function main(): Promise<void> {
  const group = new ProcessGroup();
  const cleanups: (() => void)[] = [];
  try {
    const [upstreamPort, baselinePort, nginxPort, goPort] = (await freePorts(4)) as [number, number, number, number];
    const app = `127.0.0.1:${upstreamPort}`;

    // --- the upstream every case reaches ---
    let upstreamPid: number;
    if (UPSTREAM === 'nginx') {
      const upstream = await startNginx(group, 'upstream (nginx static)', upstreamPort, { staticBody: 'hello from the upstream\n' });
      cleanups.push(upstream.cleanup);
      upstreamPid = upstream.child.pid;
    } else {
      const upstream = group.start('upstream (node:http)', NODE, [`${LIB}/http-hello-server.ts`, String(upstreamPort)]);
      await upstream.waitForLine(/^listening/);
      upstreamPid = upstream.pid;
    }
    await waitForHttp(`http://${app}/`);

    // --- the proxies under comparison ---
    const baseline = group.start('bare http-proxy', NODE, [`${LIB}/http-proxy-baseline.ts`, String(baselinePort), app]);
    await baseline.waitForLine(/^listening/);
    const nginx = await startNginx(group, 'nginx proxy', nginxPort, { proxyTo: app, keepalive: 64 });
    cleanups.push(nginx.cleanup);
    // One core for the Go proxy, as nginx has one worker and the sidecar one Node thread.
    const goproxy = peer('goproxy');
    const goChild = goproxy && group.start('Go httputil.ReverseProxy', goproxy.bin, [`127.0.0.1:${goPort}`, app], { env: { ...process.env, GOMAXPROCS: '1' } });
    if (goChild) await goChild.waitForLine(/^listening/);
    if (PROFILE_DIR) mkdirSync(PROFILE_DIR, { recursive: true });
    const profile = (name: string) => (PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR, '--cpu-prof-name', `${name}.cpuprofile`] : []);
    const off = await startSidecar(group, 'sluice (no policies)', { configYaml: '', appHttp: app, nodeArgs: profile('sluice-no-policies') });
    cleanups.push(off.cleanup);
    const on = await startSidecar(group, 'sluice (limit + breaker)', { configYaml: EVERY_REQUEST_POLICIES, appHttp: app, nodeArgs: profile('sluice-policies') });
    cleanups.push(on.cleanup);

    // `pgid`: whose CPU a case is charged with — the proxy's process group (the upstream's for direct).
    const cases = [
      { name: 'direct', url: `http://${app}/`, pgid: upstreamPid },
      { name: 'bare http-proxy (keep-alive agent)', url: `http://127.0.0.1:${baselinePort}/`, pgid: baseline.pid },
      { name: 'nginx (1 worker, keep-alive upstream)', url: `http://127.0.0.1:${nginxPort}/`, pgid: nginx.child.pid },
      ...(goChild ? [{ name: 'Go httputil.ReverseProxy (GOMAXPROCS=1)', url: `http://127.0.0.1:${goPort}/`, pgid: goChild.pid }] : []),
      { name: 'sluice, no policies', url: `http://127.0.0.1:${off.httpPort}/`, pgid: off.pid },
      { name: 'sluice, token bucket + breaker', url: `http://127.0.0.1:${on.httpPort}/`, pgid: on.pid },
    ];
    console.log(`HTTP benchmark: upstream ${UPSTREAM === 'nginx' ? 'nginx static 200 (1 worker)' : 'node:http'}, ` +
      `${ROUNDS} rounds of wrk -t1 -c${CONNECTIONS} -d${SECONDS}s (after a ${WARMUP_SECONDS}s warm-up per case); ` +
      `unloaded latency: wrk -t1 -c1 -d${UNLOADED_SECONDS}s per round; figures are medians of rounds`);
    console.log(`Node ${process.version}, ${cpus().length} cores, load average ${loadavg()[0]?.toFixed(2)} at start; all processes share the cores, nothing pinned.`);

    // Rounds, round-robin over the cases, so a burst of load from something else on the machine
    // hits one round of every case rather than all of one case; each figure is the median of rounds.
    for (const c of cases) await runWrk({ url: c.url, connections: CONNECTIONS, durationS: WARMUP_SECONDS });
    const runs = new Map<string, { loaded: WrkResult[]; unloaded: WrkResult[]; cpuUs: number[] }>(cases.map((c) => [c.name, { loaded: [], unloaded: [], cpuUs: [] }]));
    for (let round = 1; round <= ROUNDS; round++) {
      const line: string[] = [];
      for (const c of cases) {
        const { result: loaded, cpuSeconds } = await cpuDuring(c.pgid, () => runWrk({ url: c.url, connections: CONNECTIONS, durationS: SECONDS }));
        await sleep(100);
        const unloaded = await runWrk({ url: c.url, connections: 1, durationS: UNLOADED_SECONDS });
        const bad = loaded.non2xx + loaded.socketErrors + unloaded.non2xx + unloaded.socketErrors;
        if (bad > 0) console.log(`  WARNING: ${c.name}: ${bad} non-2xx responses or socket errors in round ${round}`);
        runs.get(c.name)?.loaded.push(loaded);
        runs.get(c.name)?.unloaded.push(unloaded);
        runs.get(c.name)?.cpuUs.push((cpuSeconds * 1e6) / loaded.requests);
        line.push(`${Math.round(loaded.requestsPerSec)}`);
        await sleep(100);
      }
      console.log(`  round ${round}/${ROUNDS}: req/s ${line.join(' | ')}   (load average ${loadavg()[0]?.toFixed(2)})`);
    }
    const results: CaseResult[] = cases.map((c) => {
      const r = runs.get(c.name) as { loaded: WrkResult[]; unloaded: WrkResult[]; cpuUs: number[] };
      return { name: c.name, loaded: medianOf(r.loaded), unloaded: medianOf(r.unloaded), cpuUsPerRequest: median(r.cpuUs) };
    });

    const byName = (prefix: string) => results.find((r) => r.name.startsWith(prefix));
    const [direct, bare, nginxR, sluiceOff, sluiceOn] = ['direct', 'bare http-proxy', 'nginx', 'sluice, no policies', 'sluice, token bucket'].map(byName) as [CaseResult, CaseResult, CaseResult, CaseResult, CaseResult];
    const goR = byName('Go httputil');
    const headers = ['case', 'req/s', 'p50', 'p99', 'unloaded p50', 'unloaded p99', 'CPU µs/req'];
    const rows: Cell[][] = results.map((r) => [
      r.name, r.loaded.requestsPerSec, formatMicros(r.loaded.p50Us), formatMicros(r.loaded.p99Us),
      formatMicros(r.unloaded.p50Us), formatMicros(r.unloaded.p99Us), r.cpuUsPerRequest,
    ]);
    printTable(`Results (${CONNECTIONS} connections loaded; 1 connection unloaded)`, headers, rows);

    const rps = (r: CaseResult) => r.loaded.requestsPerSec;
    const us = (v: number) => `${v.toFixed(0)} µs`;
    const aims: Aim[] = [
      { name: 'policies-on / policies-off (req/s)', value: rps(sluiceOn) / rps(sluiceOff), kind: 'atLeast', target: 0.9 },
      { name: 'sluice (no policies) / bare http-proxy', value: rps(sluiceOff) / rps(bare), kind: 'atLeast', target: 1.3 },
      { name: 'sluice (policies on) / bare http-proxy', value: rps(sluiceOn) / rps(bare), kind: 'atLeast', target: 1.3 },
      { name: 'sluice (no policies) / nginx', value: rps(sluiceOff) / rps(nginxR), kind: 'atLeast', target: 0.5 },
      { name: 'sluice (policies on) / nginx', value: rps(sluiceOn) / rps(nginxR), kind: 'atLeast', target: 0.5 },
      { name: 'added unloaded p50, no policies', value: sluiceOff.unloaded.p50Us - direct.unloaded.p50Us, kind: 'atMost', target: 100, format: us },
      { name: 'added unloaded p50, policies on', value: sluiceOn.unloaded.p50Us - direct.unloaded.p50Us, kind: 'atMost', target: 100, format: us },
    ];
    printAims('Aims', aims);
    // The same throughput ratios from CPU cost per request (proxy process only): what each proxy
    // could do with a core to itself. Steadier than req/s when other work shares the machine.
    const cpu = (r: CaseResult) => r.cpuUsPerRequest;
    const byCpu: Aim[] = [
      { name: 'policies-on / policies-off', value: cpu(sluiceOff) / cpu(sluiceOn), kind: 'atLeast', target: 0.9 },
      { name: 'sluice (no policies) / bare http-proxy', value: cpu(bare) / cpu(sluiceOff), kind: 'atLeast', target: 1.3 },
      { name: 'sluice (policies on) / bare http-proxy', value: cpu(bare) / cpu(sluiceOn), kind: 'atLeast', target: 1.3 },
      { name: 'sluice (no policies) / nginx', value: cpu(nginxR) / cpu(sluiceOff), kind: 'atLeast', target: 0.5 },
      { name: 'sluice (policies on) / nginx', value: cpu(nginxR) / cpu(sluiceOn), kind: 'atLeast', target: 0.5 },
    ];
    printAims('Same ratios from CPU per request (1 / CPU µs per request of the proxy process)', byCpu);
    if (goR) {
      // Requests per CPU-second of the proxy process: what each would do with a core to itself.
      printAims(`Against Go's httputil.ReverseProxy (${goproxy?.version}, GOMAXPROCS=1)`, [
        { name: 'sluice (no policies) / Go proxy, requests per CPU-second', value: cpu(goR) / cpu(sluiceOff), kind: 'atLeast', target: 0.7 },
        { name: 'sluice (policies on) / Go proxy, requests per CPU-second', value: cpu(goR) / cpu(sluiceOn), kind: 'atLeast', target: 0.7 },
        { name: 'sluice (no policies) / Go proxy, req/s', value: rps(sluiceOff) / rps(goR), kind: 'atLeast', target: 0.7 },
      ]);
      console.log(`  (Go proxy: ${(1e6 / cpu(goR)).toFixed(0)} requests per CPU-second, adds ${us(goR.unloaded.p50Us - direct.unloaded.p50Us)} unloaded p50; sluice: ${(1e6 / cpu(sluiceOff)).toFixed(0)} / ${(1e6 / cpu(sluiceOn)).toFixed(0)})`);
    }
    console.log(`  (for reference: bare http-proxy adds ${us(bare.unloaded.p50Us - direct.unloaded.p50Us)}, nginx adds ${us(nginxR.unloaded.p50Us - direct.unloaded.p50Us)} unloaded p50)`);

    console.log('\nMarkdown (for bench/README.md):\n');
    printMarkdownTable(headers, rows);
    console.log('');
    const byCpuValue = new Map(byCpu.map((a) => [a.name.replace(' (req/s)', ''), a.value]));
    printMarkdownTable(['aim', 'by req/s', 'by CPU/req', 'target', 'met (req/s)'], aims.map((a) => {
      const fmt = a.format ?? ((v: number) => v.toFixed(2));
      const c = byCpuValue.get(a.name.replace(' (req/s)', ''));
      return [a.name, fmt(a.value), c === undefined ? '' : c.toFixed(2), `${a.kind === 'atLeast' ? '≥' : '≤'} ${fmt(a.target)}`, aimMet(a) ? 'yes' : 'no'];
    }));
  } finally {
    await group.stopAll();
    for (const c of cleanups) c();
    if (PROFILE_DIR) console.log(`\nCPU profiles of the sidecars: ${PROFILE_DIR}`);
  }
}

/** The per-field median of several wrk runs. */
function medianOf(runs: WrkResult[]): WrkResult {
  const m = (f: (r: WrkResult) => number) => median(runs.map(f));
  return {
    requests: m((r) => r.requests), requestsPerSec: m((r) => r.requestsPerSec),
    p50Us: m((r) => r.p50Us), p75Us: m((r) => r.p75Us), p90Us: m((r) => r.p90Us), p99Us: m((r) => r.p99Us),
    non2xx: runs.reduce((a, r) => a + r.non2xx, 0), socketErrors: runs.reduce((a, r) => a + r.socketErrors, 0),
  };
}

main().catch((err: Error) => {
  console.error(`\nhttp bench failed: ${err.stack ?? err.message}`);
  process.exitCode = 1;
});
