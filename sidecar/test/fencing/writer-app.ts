/**
 * The app of a leader pod in Kleppmann's scenario: it asks its sidecar whether it leads until it
 * does, then writes to the protected service with the fencing token it was given, without asking
 * again — the check-then-act gap that a pause falls into. A pause that outlasts its lease leaves
 * it, on resume, writing with a token it no longer holds (deterministically, whatever the load).
 *
 *   node writer-app.ts <local API of its sidecar> <election> <protected service URL> <writer id>
 * Prints {"port": n} on stdout; GET /log answers what it wrote and how each write was answered.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const [localApi, election, target, writer] = process.argv.slice(2) as [string, string, string, string];
let token: number | undefined;
let seq = 0;
const writes: { seq: number; token: number; status: number }[] = [];

async function poll(): Promise<void> {
  try {
    const res = await fetch(`${localApi}/v1/leadership/${election}`, { signal: AbortSignal.timeout(1_000) });
    const s = (await res.json()) as { leader?: boolean; fencingToken?: number };
    token = s.leader ? s.fencingToken : undefined;
  } catch {
    // the sidecar is not answering: keep what we believed
  }
  if (token === undefined) setTimeout(() => void poll(), 50);
}

async function writeOnce(): Promise<void> {
  const t = token;
  if (t !== undefined) {
    const n = ++seq;
    try {
      const res = await fetch(`${target}/ledger/entries`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'sluice-fencing-token': String(t) },
        body: JSON.stringify({ writer, token: t, seq: n }),
        signal: AbortSignal.timeout(2_000),
      });
      await res.arrayBuffer();
      writes.push({ seq: n, token: t, status: res.status });
    } catch {
      writes.push({ seq: n, token: t, status: 0 });
    }
  }
  setTimeout(() => void writeOnce(), 25);
}

const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ token, writes }));
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  void poll();
  void writeOnce();
});
process.on('SIGTERM', () => process.exit(0));
