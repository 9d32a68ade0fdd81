// Outbound benchmark: an app calling another service through its sidecar's Upstream listener,
// against what it gets without one, in one run:
//   (a) spread: one grpc-js client connection, 3 endpoints — the share each endpoint gets through
//       Sluice, against one connection straight to a Service's ClusterIP (which pins it to one pod);
//   (b) one endpoint of 3 slow (10×): p99 through LeastRequest, through RoundRobin, and with no
//       balancing (calls spread evenly over 3 pinned connections, as kube-proxy spreads clients);
//       the all-healthy p99 through LeastRequest is the yardstick;
//   (c) sidecar CPU per outbound call against per inbound call (same sidecar, same endpoint
//       process), and per outbound call to that one endpoint alone: what spreading itself costs.
// Endpoints are the example UserService (examples/user-service/server.ts) in their own processes.
//
// Environment knobs: BENCH_CALLS=3000 calls per measurement, BENCH_CONCURRENCY=16 in flight,
// BENCH_DELAY_MS=2 endpoint latency (the slow one gets 10×), BENCH_PARTS=abc which measurements to run
// (e.g. c: CPU only), BENCH_ROUNDS=1 times (c) is measured (outbound and inbound alternately; the
// median of each is reported), BENCH_SIDECAR_NODE_ARGS node flags for the sidecar (e.g.
// "--cpu-prof --cpu-prof-dir /tmp/prof" to profile it).
import { resolve } from 'node:path';
import { canConnect, freePorts } from '../lib/net.ts';
import { userServiceClient, type UserServiceClient } from '../examples/user-service/user-service.ts';
import { cpuDuring } from './lib/cpu.ts';
import { NODE, ProcessGroup, waitUntil } from './lib/processes.ts';
import { startSidecar } from './lib/sidecar.ts';
import { printAims, printTable } from './lib/table.ts';

const CALLS = Number(process.env.BENCH_CALLS ?? 3000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const DELAY_MS = Number(process.env.BENCH_DELAY_MS ?? 2);
const PARTS = process.env.BENCH_PARTS ?? 'abc';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
const SIDECAR_NODE_ARGS = (process.env.BENCH_SIDECAR_NODE_ARGS ?? '').split(' ').filter(Boolean);
const ROOT = resolve(import.meta.dirname, '..');

function upstream(name: string, listen: string, endpoints: string[], algorithm: 'LeastRequest' | 'RoundRobin'): string {
  return JSON.stringify({
    apiVersion: 'sluice.dev/v1alpha1', kind: 'Upstream', metadata: { name, namespace: 'bench' },
    spec: { selector: {}, protocol: 'grpc', listen, endpoints, loadBalancer: { algorithm }, timeout: '10s' },
  });
}

/** `CALLS` GetUser calls, `CONCURRENCY` in flight, spread round-robin over `clients`; latencies in ms. */
async function drive(clients: UserServiceClient[], calls = CALLS): Promise<{ latencies: number[]; errors: number; seconds: number }> {
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < calls) {
      const i = next++;
      const c = clients[i % clients.length] as UserServiceClient;
      const t0 = performance.now();
      await new Promise<void>((done) => c.GetUser({ id: String(i % 100) }, {}, (err) => {
        if (err) errors++;
        else latencies.push(performance.now() - t0);
        done();
      }));
    }
  }));
  return { latencies, errors, seconds: (performance.now() - started) / 1000 };
}

function p(latencies: number[], q: number): number {
  const s = [...latencies].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

async function metrics(adminPort: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
}

function triesByEndpoint(text: string, upstreamId: string): Map<string, number> {
  const out = new Map<string, number>();
  const re = /^sluice_outbound_tries_total\{([^}]*)\} (\S+)$/gm;
  for (const m of text.matchAll(re)) {
    const labels = m[1] as string;
    if (!labels.includes(`upstream="${upstreamId}"`)) continue;
    const ep = /endpoint="([^"]+)"/.exec(labels)?.[1] as string;
    out.set(ep, (out.get(ep) ?? 0) + Number(m[2]));
  }
  return out;
}

async function main(): Promise<void> {
  const group = new ProcessGroup();
  try {
    const ports = await freePorts(10);
    const [e0, e1, e2, s0, s1, s2, lrHealthy, lrSlow, rrSlow, single] = ports as number[] as [number, number, number, number, number, number, number, number, number, number];
    const start = (port: number, delay: number) => group.start(`UserService :${port}`, NODE, [resolve(ROOT, 'examples/user-service/server.ts'), '--port', String(port)], { env: { ...process.env, DELAY_MS: String(delay) } });
    for (const port of [e0, e1, e2, s0, s1]) start(port, DELAY_MS);
    start(s2, DELAY_MS * 10);
    for (const port of ports.slice(0, 6)) await waitUntil(`UserService :${port}`, () => canConnect(port));
    const healthy = [e0, e1, e2].map((x) => `127.0.0.1:${x}`);
    const withSlow = [s0, s1, s2].map((x) => `127.0.0.1:${x}`);
    const [unusedHttp, inboundGrpc] = (await freePorts(2)) as [number, number];
    const config = [
      upstream('healthy', `127.0.0.1:${lrHealthy}`, healthy, 'LeastRequest'),
      upstream('slow-lr', `127.0.0.1:${lrSlow}`, withSlow, 'LeastRequest'),
      upstream('slow-rr', `127.0.0.1:${rrSlow}`, withSlow, 'RoundRobin'),
      // The inbound path's own endpoint alone: what an outbound call costs without the spreading.
      upstream('single', `127.0.0.1:${single}`, [healthy[0] as string], 'LeastRequest'),
    ].join('\n---\n');
    const sidecar = await startSidecar(group, 'sluice-proxy', {
      configYaml: config,
      appHttp: `127.0.0.1:${unusedHttp}`,
      extraArgs: ['--app-grpc', healthy[0] as string, '--listen-grpc', `127.0.0.1:${inboundGrpc}`],
      nodeArgs: SIDECAR_NODE_ARGS,
    });

    const one = (target: string) => userServiceClient(target);
    const warm = async (c: UserServiceClient[]) => void (await drive(c, 300));

    const through = one(`127.0.0.1:${lrHealthy}`);
    await warm([through]);
    const aims: Parameters<typeof printAims>[1] = [];
    const clients: UserServiceClient[] = [through];

    // (a) spread over 3 endpoints from one client connection.
    let healthyP99 = NaN;
    if (PARTS.includes('a') || PARTS.includes('b')) {
      const before = triesByEndpoint(await metrics(sidecar.adminPort), 'bench/healthy');
      const spread = await drive([through]);
      const after = triesByEndpoint(await metrics(sidecar.adminPort), 'bench/healthy');
      const shares = healthy.map((ep) => ((after.get(ep) ?? 0) - (before.get(ep) ?? 0)) / CALLS);
      const direct = one(healthy[0] as string);
      clients.push(direct);
      await warm([direct]);
      const pinned = await drive([direct]);
      printTable(`(a) one client connection, ${CALLS} calls, ${CONCURRENCY} in flight, 3 endpoints`, ['path', 'endpoint 1', 'endpoint 2', 'endpoint 3', 'calls/s', 'p99 ms', 'errors'], [
        ['through Sluice (LeastRequest)', ...shares.map((s) => `${(s * 100).toFixed(1)} %`), Math.round(CALLS / spread.seconds), p(spread.latencies, 0.99).toFixed(2), spread.errors],
        ['one connection to a ClusterIP', '100 %', '0 %', '0 %', Math.round(CALLS / pinned.seconds), p(pinned.latencies, 0.99).toFixed(2), pinned.errors],
      ]);

      healthyP99 = p(spread.latencies, 0.99);
      aims.push({ name: 'spread: largest share / even share (1/3)', value: Math.max(...shares) * 3, kind: 'atMost', target: 1.2 });
    }

    // (b) one of 3 endpoints 10× slower.
    if (PARTS.includes('b')) {
      const lr = one(`127.0.0.1:${lrSlow}`);
      const rr = one(`127.0.0.1:${rrSlow}`);
      const pinnedClients = withSlow.map(one);
      clients.push(lr, rr, ...pinnedClients);
      for (const c of [[lr], [rr], pinnedClients]) await warm(c);
      const rows: [string, { latencies: number[]; errors: number }][] = [
        ['LeastRequest', await drive([lr])],
        ['RoundRobin', await drive([rr])],
        ['none (3 pinned connections)', await drive(pinnedClients)],
      ];
      printTable(`(b) one endpoint of 3 at ${DELAY_MS * 10} ms, the others ${DELAY_MS} ms; all-healthy LeastRequest p99 ${healthyP99.toFixed(2)} ms`, ['balancing', 'p50 ms', 'p99 ms', 'p99 / healthy p99', 'errors'],
        rows.map(([name, r]) => [name, p(r.latencies, 0.5).toFixed(2), p(r.latencies, 0.99).toFixed(2), (p(r.latencies, 0.99) / healthyP99).toFixed(2), r.errors]));

      const lrP99 = p(rows[0]![1].latencies, 0.99);
      aims.push({ name: 'LeastRequest p99 with a slow endpoint / all-healthy p99', value: lrP99 / healthyP99, kind: 'atMost', target: 1.5 });
    }

    // (c) sidecar CPU per call, outbound vs inbound, same endpoint process; rounds alternate.
    if (PARTS.includes('c')) {
      const inbound = one(`127.0.0.1:${inboundGrpc}`);
      const toOne = one(`127.0.0.1:${single}`);
      clients.push(inbound, toOne);
      await warm([inbound]);
      await warm([toOne]);
      const outs: number[] = [];
      const ins: number[] = [];
      const ones: number[] = [];
      const rates = { out: 0, in: 0, one: 0 };
      const sys = { out: 0, in: 0, outAll: 0, inAll: 0 };
      // BENCH_ONLY=out|in drives one direction only: a profile of the sidecar then shows that path alone.
      const only = process.env.BENCH_ONLY;
      for (let r = 0; r < ROUNDS; r++) {
        const cpuOut = await cpuDuring(sidecar.pid, () => drive(only === 'in' ? [] : [through], only === 'in' ? 0 : CALLS));
        const cpuIn = await cpuDuring(sidecar.pid, () => drive(only === 'out' ? [] : [inbound], only === 'out' ? 0 : CALLS));
        const cpuOne = await cpuDuring(sidecar.pid, () => drive(only ? [] : [toOne], only ? 0 : CALLS));
        ones.push((cpuOne.cpuSeconds * 1e6) / CALLS);
        rates.one = Math.round(CALLS / cpuOne.result.seconds);
        outs.push((cpuOut.cpuSeconds * 1e6) / CALLS);
        ins.push((cpuIn.cpuSeconds * 1e6) / CALLS);
        rates.out = Math.round(CALLS / cpuOut.result.seconds);
        rates.in = Math.round(CALLS / cpuIn.result.seconds);
        sys.out += cpuOut.systemSeconds;
        sys.outAll += cpuOut.cpuSeconds;
        sys.in += cpuIn.systemSeconds;
        sys.inAll += cpuIn.cpuSeconds;
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
      const usOut = median(outs);
      const usIn = median(ins);
      const usOne = median(ones);
      const pct = (part: number, all: number) => (all > 0 ? `${Math.round((100 * part) / all)} %` : '-');
      printTable(`(c) sidecar CPU per call (median of ${ROUNDS} alternating round${ROUNDS > 1 ? 's' : ''}: out ${outs.map((x) => x.toFixed(0)).join('/')}, in ${ins.map((x) => x.toFixed(0)).join('/')})`, ['direction', 'µs CPU / call', 'of it kernel', 'calls/s (last round)'], [
        ['outbound (Upstream, 3 endpoints)', usOut.toFixed(1), pct(sys.out, sys.outAll), rates.out],
        ['inbound (policy chain off: no policies)', usIn.toFixed(1), pct(sys.in, sys.inAll), rates.in],
        ['outbound to the inbound\'s endpoint alone', usOne.toFixed(1), '', rates.one],
      ]);
      console.log(`outbound / inbound per round: ${outs.map((o, i) => (o / (ins[i] as number)).toFixed(2)).join(' ')}; one endpoint / inbound: ${ones.map((o, i) => (o / (ins[i] as number)).toFixed(2)).join(' ')}`);
      aims.push({ name: 'sidecar CPU per outbound call / per inbound call', value: usOut / usIn, kind: 'atMost', target: 1.0 });
      aims.push({ name: '  the same, outbound to the inbound\'s one endpoint', value: usOne / usIn, kind: 'atMost', target: 1.0 });
    }

    printAims('Aims', aims);
    for (const c of clients) c.close();
  } finally {
    await group.stopAll();
  }
}

await main();
