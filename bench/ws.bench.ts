// WebSocket benchmark: echo messages/s through the sluice sidecar vs straight to the app, side by
// side in one run, and what one idle proxied connection costs the sidecar in memory (RSS growth
// over ~10 000 connections). See bench/README.md.
//
// Environment knobs (all optional):
//   BENCH_ROUNDS=3         rounds of (direct, sidecar) echo runs; figures are medians of rounds
//   BENCH_SECONDS=3        measured seconds per echo run (each run warms up 1 s first)
//   BENCH_WS_CLIENTS=50    echo clients, one message in flight each
//   BENCH_WS_BYTES=64      echo message size
//   BENCH_WS_IDLE=10000    idle connections for the memory figure (capped by the open-files limit)
//   BENCH_WS_BEAT=2000     idle connections for the heartbeat cost (sidecar CPU, pings every 1 s vs off)
//   BENCH_WS_BEAT_HOLD=6   seconds the heartbeat CPU is measured over
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { freePorts } from '../lib/net.ts';
import { hardNofileLimit, NODE, ProcessGroup, rssBytes, sleep, type Child } from './lib/processes.ts';
import { startSidecar, UNREACHABLE_WEBSOCKET_LIMITS } from './lib/sidecar.ts';
import { formatBytes, median, printAims, printMarkdownTable, printTable, type Aim, type Cell } from './lib/table.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const CLIENTS = Number(process.env.BENCH_WS_CLIENTS ?? 50);
const BYTES = Number(process.env.BENCH_WS_BYTES ?? 64);
const WANTED_IDLE = Number(process.env.BENCH_WS_IDLE ?? 10_000);
const BEAT_CONNECTIONS = Number(process.env.BENCH_WS_BEAT ?? 2_000);
const BEAT_HOLD_S = Number(process.env.BENCH_WS_BEAT_HOLD ?? 6);
const CLIENT_PROCESSES = 2;
const LIB = resolve(import.meta.dirname, 'lib');

interface EchoResult {
  messagesPerSec: number;
  errors: number;
}

async function echoRun(group: ProcessGroup, name: string, url: string): Promise<EchoResult> {
  const load = group.start(name, NODE, [`${LIB}/ws-echo-load.ts`, url, String(CLIENTS), String(SECONDS), String(BYTES), '1']);
  const line = await load.waitForLine(/^\{/, (SECONDS + 30) * 1000);
  await load.exited;
  return JSON.parse(line) as EchoResult;
}

async function main(): Promise<void> {
  const group = new ProcessGroup();
  const cleanups: (() => void)[] = [];
  try {
    const [echoPort] = (await freePorts(1)) as [number];
    const app = `127.0.0.1:${echoPort}`;
    // The echo server holds one socket per idle connection too: give it the room.
    const echo = group.start('ws echo server', NODE, [`${LIB}/ws-echo-server.ts`, String(echoPort)], { nofile: hardNofileLimit() });
    await echo.waitForLine(/^listening/);

    console.log(`WebSocket benchmark: ws echo server (node, ws); ${CLIENTS} clients × 1 message of ${BYTES} B in flight, ` +
      `${ROUNDS} rounds of ${SECONDS}s per side; figures are medians of rounds`);
    console.log(`Node ${process.version}, load average ${loadavg()[0]?.toFixed(2)} at start; all processes share the cores, nothing pinned.`);

    // --- 1. echo throughput, direct vs through the sidecar ---
    const proxied = await startSidecar(group, 'sluice (ws limits)', { configYaml: UNREACHABLE_WEBSOCKET_LIMITS, appHttp: app });
    cleanups.push(proxied.cleanup);
    const direct: EchoResult[] = [];
    const through: EchoResult[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      direct.push(await echoRun(group, 'ws load (direct)', `ws://${app}/ws`));
      through.push(await echoRun(group, 'ws load (sluice)', `ws://127.0.0.1:${proxied.httpPort}/ws`));
      const d = direct.at(-1) as EchoResult;
      const t = through.at(-1) as EchoResult;
      console.log(`  round ${round}/${ROUNDS}: direct ${Math.round(d.messagesPerSec)} msg/s | sluice ${Math.round(t.messagesPerSec)} msg/s` +
        `${d.errors + t.errors > 0 ? `  (WARNING: ${d.errors + t.errors} client errors)` : ''}   (load average ${loadavg()[0]?.toFixed(2)})`);
    }
    await group.stop(proxied.child);
    const directRate = median(direct.map((r) => r.messagesPerSec));
    const sluiceRate = median(through.map((r) => r.messagesPerSec));

    // --- 2. memory per idle proxied connection ---
    // Each proxied connection is two sockets in the sidecar (client side, app side); without
    // privileges the soft limit can only be raised to the hard one, which may cap the count.
    const hard = hardNofileLimit();
    const idleCount = Math.min(WANTED_IDLE, Math.floor((hard - 200) / 2));
    if (idleCount < WANTED_IDLE) console.log(`  note: open-files hard limit is ${hard}; using ${idleCount} idle connections instead of ${WANTED_IDLE}`);
    const idle = await startSidecar(group, 'sluice (idle connections)', { configYaml: UNREACHABLE_WEBSOCKET_LIMITS, appHttp: app, nofile: hard });
    cleanups.push(idle.cleanup);
    const url = `ws://127.0.0.1:${idle.httpPort}/ws`;
    // Warm the proxy's code paths (and the heap they settle into) before the baseline.
    await openIdle(group, 'ws warm-up clients', url, 200).then((clients) => Promise.all(clients.map((c) => group.stop(c))));
    await sleep(1_500);
    const before = rssBytes(idle.pid);
    const started = Date.now();
    const perProcess = Math.ceil(idleCount / CLIENT_PROCESSES);
    const clients = await openIdle(group, 'ws idle clients', url, idleCount, perProcess);
    const openSeconds = (Date.now() - started) / 1000;
    await sleep(2_000);
    const open = await websocketGauge(idle.adminPort);
    const after = rssBytes(idle.pid);
    const perConnection = (after - before) / open;
    await Promise.all(clients.map((c) => group.stop(c)));
    await group.stop(idle.child);

    // --- 3. heartbeat cost: sidecar CPU with idle connections, pinged every 1 s (30× the default) vs never ---
    const beatCount = Math.min(BEAT_CONNECTIONS, idleCount);
    const beatCpu: Record<string, number> = {};
    for (const [label, interval] of [['pings off', '0'], ['ping every 1 s', '1s']] as const) {
      const sc = await startSidecar(group, `sluice (${label})`, { configYaml: UNREACHABLE_WEBSOCKET_LIMITS, appHttp: app, nofile: hard, extraArgs: ['--websocket-ping-interval', interval] });
      cleanups.push(sc.cleanup);
      const held = await openIdle(group, `ws idle clients (${label})`, `ws://127.0.0.1:${sc.httpPort}/ws`, beatCount);
      await sleep(2_000);
      const t0 = cpuSeconds(sc.pid);
      await sleep(BEAT_HOLD_S * 1000);
      beatCpu[label] = (cpuSeconds(sc.pid) - t0) / BEAT_HOLD_S;
      const stillOpen = await websocketGauge(sc.adminPort);
      if (stillOpen < beatCount) console.log(`  WARNING: ${beatCount - stillOpen} connections closed during the heartbeat run (${label})`);
      await Promise.all(held.map((c) => group.stop(c)));
      await group.stop(sc.child);
    }
    const beatExtra = (beatCpu['ping every 1 s'] as number) - (beatCpu['pings off'] as number);
    const perPingUs = (beatExtra / beatCount) * 1e6;

    // --- report ---
    const ratio = sluiceRate / directRate;
    printTable('Echo throughput', ['path', 'messages/s', 'per client'], [
      ['direct', directRate, directRate / CLIENTS],
      ['through sluice', sluiceRate, sluiceRate / CLIENTS],
    ]);
    const memRows: Cell[][] = [
      ['sidecar RSS before', formatBytes(before)],
      [`sidecar RSS with ${open} idle connections`, formatBytes(after)],
      ['per idle proxied connection', formatBytes(perConnection)],
      ['connections opened in', `${openSeconds.toFixed(1)} s`],
    ];
    printTable('Idle connections (sidecar VmRSS)', ['measure', 'value'], memRows);
    const beatRows: Cell[][] = [
      [`sidecar CPU, ${beatCount} idle connections, pings off`, `${((beatCpu['pings off'] as number) * 100).toFixed(2)} %`],
      [`sidecar CPU, ${beatCount} idle connections, ping every 1 s`, `${((beatCpu['ping every 1 s'] as number) * 100).toFixed(2)} %`],
      ['CPU per ping + pong (difference / pings)', `${perPingUs.toFixed(1)} µs`],
      ['at the default 30 s interval, per 10 000 idle connections', `${((perPingUs * 10_000) / 30 / 1e4).toFixed(3)} % of a core`],
    ];
    printTable('Heartbeat cost (sidecar CPU time)', ['measure', 'value'], beatRows);
    const kb = (v: number) => `${(v / 1024).toFixed(1)} KiB`;
    const aims: Aim[] = [
      { name: 'proxied / direct echo messages/s', value: ratio, kind: 'atLeast', target: 0.5 },
      { name: 'memory per idle proxied connection', value: perConnection, kind: 'atMost', target: 17 * 1024, format: kb },
    ];
    printAims('Aims', aims);

    console.log('\nMarkdown (for bench/README.md):\n');
    printMarkdownTable(['measure', 'direct', 'through sluice', 'ratio'], [
      ['echo messages/s', directRate, sluiceRate, ratio.toFixed(2)],
    ]);
    console.log('');
    printMarkdownTable(['measure', 'value'], memRows);
    console.log('');
    printMarkdownTable(['measure', 'value'], beatRows);
  } finally {
    await group.stopAll();
    for (const c of cleanups) c();
  }
}

/** Opens `count` idle connections from client processes of at most `perProcess` each; resolves once all are open. */
async function openIdle(group: ProcessGroup, name: string, url: string, count: number, perProcess = count): Promise<Child[]> {
  const children: Child[] = [];
  for (let left = count; left > 0; left -= perProcess) {
    const n = Math.min(left, perProcess);
    children.push(group.start(`${name} #${children.length + 1}`, NODE, [`${LIB}/ws-idle-clients.ts`, url, String(n), '100'], { nofile: n + 200 }));
  }
  const lines = await Promise.all(children.map((c) => c.waitForLine(/^open \d+/, 60_000)));
  const failed = lines.reduce((a, l) => a + Number(/failed (\d+)/.exec(l)?.[1] ?? 0), 0);
  if (failed > 0) console.log(`  WARNING: ${failed} of ${count} connections failed to open: ${lines.join('; ')}`);
  return children;
}

/** User + system CPU seconds a process has used (/proc/<pid>/stat, in clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** sluice_websocket_connections from the admin port: how many connections the sidecar is proxying. */
async function websocketGauge(adminPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const m = /^sluice_websocket_connections(?:\{[^}]*\})?\s+(\d+)/m.exec(text);
  if (!m) throw new Error('sluice_websocket_connections not found in /metrics');
  return Number(m[1]);
}

main().catch((err: Error) => {
  console.error(`\nws bench failed: ${err.stack ?? err.message}`);
  process.exitCode = 1;
});
