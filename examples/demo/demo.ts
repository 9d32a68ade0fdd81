// `npm run demo`: the standalone sidecar in front of a small HTTP app, driven with real traffic.
// It shows a per-user token bucket admitting a burst and limiting the rest, and a circuit breaker
// opening when the app fails and closing again once it recovers. Stops by itself (or on Ctrl-C)
// and leaves no process behind.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (text: string) => process.stdout.write(`${text}\n`);

let failing = false;
const app = createServer((req, res) => {
  if (failing && req.url?.startsWith('/api/')) {
    res.writeHead(500).end('app is failing');
    return;
  }
  res.end(JSON.stringify({ user: req.url?.split('/').pop() }));
});
await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
const appPort = (app.address() as AddressInfo).port;

const ports = { http: 15080, admin: 15000, localApi: 15020 };
const sidecar = spawn(process.execPath, [
  here('../../sidecar/bin/sluice-proxy.ts'), '--config', here('sluice.yaml'),
  '--app-http', `127.0.0.1:${appPort}`, '--labels', 'app=user-service',
  '--listen-http', `127.0.0.1:${ports.http}`, '--admin', `127.0.0.1:${ports.admin}`, '--local-api', `127.0.0.1:${ports.localApi}`,
  '--log-level', 'warn',
], { stdio: ['ignore', 'inherit', 'inherit'] });

let stopping = false;
const stop = async (code: number) => {
  if (stopping) return;
  stopping = true;
  sidecar.kill('SIGTERM');
  await new Promise((r) => (sidecar.exitCode !== null ? r(null) : sidecar.once('exit', r)));
  app.closeAllConnections();
  app.close();
  process.exit(code);
};
process.on('SIGINT', () => void stop(130));
process.on('SIGTERM', () => void stop(143));
sidecar.once('exit', (code) => {
  if (!stopping) {
    say(`sluice-proxy exited unexpectedly (${code})`);
    void stop(1);
  }
});

const base = `http://127.0.0.1:${ports.http}`;
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`http://127.0.0.1:${ports.admin}/readyz`)).ok) break;
  } catch {
    if (i > 100) {
      say('sluice-proxy did not become ready (are ports 15000/15020/15080 free?)');
      await stop(1);
    }
  }
  await sleep(100);
}
say(`sluice-proxy is up: ${base} → app on 127.0.0.1:${appPort}; admin on http://127.0.0.1:${ports.admin}/metrics`);

const tally = async (n: number, user: string) => {
  const counts: Record<number, number> = {};
  await Promise.all(Array.from({ length: n }, async () => {
    const r = await fetch(`${base}/api/users/${user}`, { headers: { 'x-user-id': user } });
    await r.arrayBuffer();
    counts[r.status] = (counts[r.status] ?? 0) + 1;
  }));
  return counts;
};

say('\n1. Rate limiting — rule per-user: 100 req/s per x-user-id, bursts up to 200');
say(`   alice sends 300 at once:  ${JSON.stringify(await tally(300, 'alice'))}   (the burst of 200, plus what refilled while they arrived; the rest 429)`);
say(`   bob sends 50 at once:     ${JSON.stringify(await tally(50, 'bob'))}   (his own bucket)`);
await sleep(1000);
say(`   alice, one second later:  ${JSON.stringify(await tally(50, 'alice'))}   (refilled at 100/s)`);

say('\n2. Circuit breaking — rule backend: 5 consecutive 5xx open the circuit for 2s');
failing = true;
for (let i = 0; i < 8; i++) {
  const r = await fetch(`${base}/api/users/carol`, { headers: { 'x-user-id': `c${i}` } });
  say(`   call ${i + 1}: ${r.status}${r.status === 503 ? ` (circuit open, Retry-After ${r.headers.get('retry-after')}s)` : ' (the app failed)'}`);
  await r.arrayBuffer();
}
failing = false;
say('   the app recovers; after openDuration the breaker lets 3 probes through and closes');
await sleep(2100);
for (let i = 0; i < 4; i++) {
  const r = await fetch(`${base}/api/users/carol`, { headers: { 'x-user-id': `d${i}` } });
  say(`   call: ${r.status}`);
  await r.arrayBuffer();
}
const metrics = await (await fetch(`http://127.0.0.1:${ports.admin}/metrics`)).text();
say('\n3. What the sidecar counted (sluice_requests_total):');
for (const line of metrics.split('\n').filter((l) => l.startsWith('sluice_requests_total'))) say(`   ${line}`);
say('\nDone.');
await stop(0);
