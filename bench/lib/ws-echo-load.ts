// WebSocket echo load: N clients each keep one message in flight (send, wait for the echo, send
// again) for a fixed time, after a warm-up. Prints one JSON line with the count.
// Usage: node bench/lib/ws-echo-load.ts <ws url> <clients> <seconds> [messageBytes=64] [warmupSeconds=1]
import WebSocket from 'ws';

const [url, clientsArg, secondsArg, bytesArg, warmupArg] = process.argv.slice(2);
if (!url || !clientsArg || !secondsArg) {
  process.stderr.write('usage: ws-echo-load.ts <ws url> <clients> <seconds> [messageBytes] [warmupSeconds]\n');
  process.exit(2);
}
const clients = Number(clientsArg);
const seconds = Number(secondsArg);
const payload = Buffer.alloc(Number(bytesArg ?? 64), 'x');
const warmupMs = Number(warmupArg ?? 1) * 1000;

let counting = false;
let stopped = false;
let messages = 0;
let errors = 0;

function open(): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url as string, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

const sockets = await Promise.all(Array.from({ length: clients }, open));
for (const ws of sockets) {
  ws.on('error', () => errors++);
  ws.on('close', () => {
    if (!stopped) errors++;
  });
  ws.on('message', () => {
    if (counting) messages++;
    if (!stopped) ws.send(payload);
  });
}
for (const ws of sockets) ws.send(payload);
await new Promise((r) => setTimeout(r, warmupMs));
counting = true;
const start = performance.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
counting = false;
const elapsed = (performance.now() - start) / 1000;
stopped = true;
console.log(JSON.stringify({ messages, seconds: elapsed, messagesPerSec: messages / elapsed, clients, errors }));
for (const ws of sockets) ws.terminate();
process.exit(0);
