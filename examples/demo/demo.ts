// `npm run demo`: Sluice doing its whole job on one machine. It starts local Redis servers (one
// for queues and pub/sub, three independent lock nodes), the three example apps — user-service
// (gRPC), push-hub (two replicas), order-worker — each behind its own sluice-proxy in standalone
// mode with examples/demo/sluice.yaml, then drives traffic and narrates what the sidecars do:
// limits, a breaker tripping and recovering, a leader failing over, tasks retried and
// dead-lettered. A live page on the sidecars' admin ports shows the same state.
//
//   npm run demo [-- --duration 10m] [-- --fast]
//   --duration D   how long to stay up after the scripted steps, with light traffic (default 30s; 0: stop at once)
//   --fast         no pauses for reading between steps (env SLUICE_DEMO_FAST=1; SLUICE_DEMO_DURATION=D)
// Ctrl-C stops it at any time; every process it started is stopped (process groups), none is left.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatDuration, parseDuration } from '../../lib/policy/duration.ts';
import { Processes } from './processes.ts';
import { backgroundTraffic, circuitBreaker, leaderFailover, rateLimits, serviceToService, statusLine, taskQueue, type SceneContext } from './scenes.ts';
import { startStack, type Stack } from './stack.ts';

const out = (text: string) => process.stdout.write(`${text}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let args: { duration?: string; fast?: boolean; help?: boolean };
try {
  args = parseArgs({ options: { duration: { type: 'string' }, fast: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }).values;
} catch (err) {
  out(`${(err as Error).message}\nusage: npm run demo [-- --duration 30s] [-- --fast]`);
  process.exit(2);
}
if (args.help) {
  out('usage: npm run demo [-- --duration 30s] [-- --fast]\n  --duration D  stay up D after the scripted steps (default 30s, 0 = stop at once)\n  --fast        no pauses between steps');
  process.exit(0);
}
const fast = args.fast === true || process.env.SLUICE_DEMO_FAST === '1';
const durationText = args.duration ?? process.env.SLUICE_DEMO_DURATION ?? '30s';
const holdMs = durationText === '0' ? 0 : parseDuration(durationText);
if (holdMs === undefined) {
  out(`--duration: "${durationText}" is not a duration (e.g. 0, 30s, 10m)`);
  process.exit(2);
}

if (spawnSync('redis-server', ['--version']).error) {
  out('The demo needs redis-server (it starts its own, on free ports), and it is not on the PATH.');
  out('Install it, e.g. on Debian/Ubuntu:  sudo apt-get install -y redis-server');
  out('(macOS: brew install redis). Then run npm run demo again.');
  process.exit(1);
}

const FAIL_RATE = 0.4;
const runDir = mkdtempSync(join(tmpdir(), 'sluice-demo-'));
const logDir = join(runDir, 'logs');
mkdirSync(logDir);
const procs = new Processes(logDir);
const closers: (() => void)[] = [];
let stack: Stack | undefined;
let stopBackground: (() => void) | undefined;
let stopping: Promise<void> | undefined;

/** Stops everything in order — sidecars, then apps, then Redis — and exits. */
function shutdown(code: number, why?: string): Promise<void> {
  stopping ??= (async () => {
    if (process.stdout.isTTY) process.stdout.write('\r\x1b[2K');
    out(`\n${why ? `${why}: ` : ''}stopping ${procs.all().filter((c) => c.running()).length} processes…`);
    stopBackground?.();
    for (const close of closers) {
      try {
        close();
      } catch {
        // already closed
      }
    }
    await procs.stopAll([(c) => c.name.startsWith('sidecar-'), (c) => !c.name.startsWith('redis')]);
    const left = procs.survivors();
    out(left.length === 0 ? `stopped: every process the demo started (${procs.all().length}, counting restarts) has exited` : `still running (pids): ${left.join(' ')}`);
    if (code === 0 || code === 130 || code === 143) rmSync(runDir, { recursive: true, force: true });
    else out(`logs kept in ${logDir}`);
    process.exit(code);
  })();
  return stopping;
}

let firstInterrupt = 0;
process.on('SIGINT', () => {
  // A second Ctrl-C while stopping: stop waiting for graceful exits. (Within a second it is the same
  // Ctrl-C arriving twice: from the terminal and forwarded by `npm run`.)
  if (firstInterrupt === 0) firstInterrupt = Date.now();
  else if (Date.now() - firstInterrupt > 1_000) {
    for (const c of procs.all()) {
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    process.exit(130);
  }
  void shutdown(130, 'Ctrl-C');
});
process.on('SIGTERM', () => void shutdown(143, 'SIGTERM'));
procs.watchExits((c) => {
  if (stopping) return;
  out(`\n${c.name} (pid ${c.pid}) exited unexpectedly; the end of its log:\n${c.tail()}`);
  void shutdown(1);
});

async function main(): Promise<void> {
  out('Sluice demo: three example apps, each behind its own sluice-proxy (standalone mode), on free loopback ports.');
  out('  policies  examples/demo/sluice.yaml: the documents of examples/policies.yaml, with durations');
  out('            shortened for the demo (openDuration 30s → 3s, election ttl 10s → 4s; see the file)');
  out(`  logs      ${logDir}`);
  out('\nStarting 4 redis-servers, 7 apps and 5 sidecars…');
  stack = await startStack(procs, runDir, { failRate: FAIL_RATE });
  const s = stack;
  const row = (what: string, pid: number, where: string) => out(`  ${what.padEnd(34)} pid ${String(pid).padEnd(8)} ${where}`);
  row('redis (queues, pub/sub)', s.redis.child.pid, s.redis.url);
  for (const n of s.lockNodes) row(`${n.name} (RedLock node)`, n.child.pid, n.url);
  row('user-service app (gRPC)', s.userService.app.pid, `127.0.0.1:${s.userService.port}`);
  row('  its sluice-proxy', s.userService.sidecar.child.pid, `gRPC in ${s.userService.sidecar.grpc} · admin ${s.userService.sidecar.admin}`);
  for (const h of s.pushHub) {
    row(`${h.name} app (WebSocket)`, h.app.pid, `127.0.0.1:${h.port}`);
    row('  its sluice-proxy', h.sidecar.child.pid, `ws://127.0.0.1:${h.sidecar.ports.http}/ws · admin ${h.sidecar.admin}`);
  }
  for (const r of s.userReplicas.slice(1)) row(`${r.name} app (gRPC replica)`, r.app.pid, `127.0.0.1:${r.port}`);
  row('order-worker app (HTTP)', s.orderWorker.app.pid, `127.0.0.1:${s.orderWorker.port}`);
  row('  its sluice-proxy', s.orderWorker.sidecar.child.pid, `local API ${s.orderWorker.sidecar.localApi} · admin ${s.orderWorker.sidecar.admin}`);
  row('order-api app (HTTP, the producer)', s.orderApi.app.pid, `127.0.0.1:${s.orderApi.port}`);
  row('  its sluice-proxy', s.orderApi.sidecar.child.pid, `Upstream user-service ${s.orderApi.upstream} · admin ${s.orderApi.sidecar.admin}`);
  const [first, ...others] = s.sidecars;
  out(`\nlive page: ${first!.admin}/ui?peers=${others.map((o) => o.admin).join(',')}`);
  out('           (every sidecar on one page: the last five minutes plotted, refreshed each second;');
  out('            each admin port also serves its own /ui and /v1/live)');

  const ctx: SceneContext = {
    stack: s, procs, closers,
    say: (text) => {
      if (!stopping) out(text);
    },
    pause: async () => void (await sleep(fast ? 0 : 2_000)),
  };
  await ctx.pause();
  const limits = await rateLimits(ctx);
  const breaker = await circuitBreaker(ctx);
  const leader = await leaderFailover(ctx);
  const tasks = await taskQueue(ctx, FAIL_RATE);
  const s2s = await serviceToService(ctx);

  out('\nSummary');
  out(`  rate limits      GetUser admitted ${limits.admitted}, limited ${limits.limited}; a WebSocket flood closed with 1008`);
  out(`  circuit breaker  ${breaker.opened ? 'opened' : 'did not open'} while the app failed, ${breaker.closed ? 'closed' : 'did not close'} after it recovered`);
  out(`  leader election  ${leader.from} (token ${leader.fromToken}) → ${leader.to} (token ${leader.toToken})`);
  out(`  task queue       completed ${tasks.completed}, retried ${tasks.retried}, dead-lettered ${tasks.dead}`);
  out(`  upstream         ${s2s.orders} GetUser calls over ${s2s.perReplica.length} replicas (${s2s.perReplica.map((r) => r.calls).join(' / ')}), ${s2s.failed} failed after ${s2s.killed} was killed`);
  out(`  live             ${await statusLine(s)}`);

  if (holdMs! > 0) {
    out(`\nStaying up for ${formatDuration(holdMs!)} with light traffic (--duration to change); Ctrl-C stops it now.`);
    out(`live page: ${first!.admin}/ui?peers=${others.map((o) => o.admin).join(',')}`);
    stopBackground = backgroundTraffic(ctx);
    const end = Date.now() + holdMs!;
    const tty = process.stdout.isTTY === true;
    let lastPrinted = 0;
    while (!stopping && Date.now() < end) {
      const left = Math.ceil((end - Date.now()) / 1000);
      const line = `[${left}s left] ${await statusLine(s)}`;
      if (stopping) break;
      if (tty) process.stdout.write(`\r\x1b[2K${line.slice(0, (process.stdout.columns || 200) - 1)}`);
      else if (Date.now() - lastPrinted >= 5_000) {
        out(line);
        lastPrinted = Date.now();
      }
      await sleep(Math.min(1_000, Math.max(0, end - Date.now())));
    }
    if (tty && !stopping) process.stdout.write('\n');
  }
  out('\nDone.');
  await shutdown(0);
}

main().catch((err: Error) => {
  if (stopping) return; // a step interrupted by Ctrl-C
  out(`\nThe demo failed: ${err.message}`);
  void shutdown(1);
});
