// Opens many WebSocket connections and keeps them idle until SIGTERM, so a benchmark can measure
// what an idle connection costs the process in between.
// Prints "open <n> failed <m>" once every attempt has settled.
// Usage: node bench/lib/ws-idle-clients.ts <ws url> <count> [concurrentHandshakes=100]
import WebSocket from 'ws';

const [url, countArg, concurrencyArg] = process.argv.slice(2);
if (!url || !countArg) {
  process.stderr.write('usage: ws-idle-clients.ts <ws url> <count> [concurrentHandshakes]\n');
  process.exit(2);
}
const count = Number(countArg);
const concurrency = Number(concurrencyArg ?? 100);
const sockets: WebSocket[] = [];
let failed = 0;
let next = 0;
let firstError: string | undefined;

function openOne(): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url as string, { perMessageDeflate: false, handshakeTimeout: 15_000 });
    ws.once('open', () => {
      sockets.push(ws);
      resolve();
    });
    ws.once('error', (err) => {
      failed++;
      firstError ??= err.message;
      resolve();
    });
  });
}

async function worker(): Promise<void> {
  while (next < count) {
    next++;
    await openOne();
  }
}

await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
let closedEarly = 0;
for (const ws of sockets) ws.on('close', () => closedEarly++);
console.log(`open ${sockets.length} failed ${failed}${firstError ? ` firstError ${JSON.stringify(firstError)}` : ''}`);
process.on('SIGTERM', () => {
  if (closedEarly > 0) process.stderr.write(`${closedEarly} connections closed before the end\n`);
  for (const ws of sockets) ws.terminate();
  process.exit(0);
});
setInterval(() => {}, 60_000);
