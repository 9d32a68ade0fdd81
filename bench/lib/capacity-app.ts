// An app with a fixed capacity, for bench:overload: SLOTS calls at a time, SERVICE_MS each; calls
// beyond the slots queue inside the app (as a thread pool's queue would), so its latency grows with
// the concurrency it is offered. `POST /__capacity?slots=N` changes the slots mid-run;
// `/__reset` answers every queued call 503 at once (between measurements); `/__state` says how
// many calls it holds. Prints "listening <port>" when ready.
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

let slots = Number(process.env.SLOTS ?? 8);
const serviceMs = Number(process.env.SERVICE_MS ?? 10);
let busy = 0;
const waiting: ServerResponse[] = [];

function run(res: ServerResponse): void {
  if (busy >= slots) {
    waiting.push(res);
    return;
  }
  busy++;
  setTimeout(() => {
    busy--;
    res.end('ok');
    next();
  }, serviceMs);
}

function next(): void {
  while (busy < slots && waiting.length > 0) run(waiting.shift() as ServerResponse);
}

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (url.startsWith('/__capacity')) {
    slots = Number(new URL(url, 'http://x').searchParams.get('slots') ?? slots);
    next();
    res.end(String(slots));
    return;
  }
  if (url === '/__reset') {
    const dropped = waiting.splice(0);
    for (const r of dropped) {
      r.statusCode = 503;
      r.end();
    }
    res.end(String(dropped.length));
    return;
  }
  if (url === '/__state') {
    res.end(JSON.stringify({ slots, busy, waiting: waiting.length }));
    return;
  }
  req.resume();
  run(res);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`listening ${(server.address() as AddressInfo).port}`);
});
