// gRPC load generator for bench/grpc.bench.ts, run as its own process so the client's CPU is
// apart from the proxy's and the app's. It holds one grpc-js channel to each target and switches
// the load between them in short alternating slices, so both targets see the same machine: on a
// shared 2-core box, noise from other processes then hits both sides of the ratio alike.
//   node bench/lib/grpc-load.ts <targetA> <targetB> unary|stream <concurrency> <sliceSeconds> <slicesPerTarget>
// Prints one JSON line: {"rates": [[A slice rates...], [B slice rates...]], "totals": [A, B], "errors": {...}}
// (unary: calls/s; stream: messages/s).
import { userServiceClient, type User, type UserServiceClient } from '../../examples/user-service/user-service.ts';

const [a = '', b = '', mode = 'unary', concurrencyArg = '50', sliceArg = '1', slicesArg = '5'] = process.argv.slice(2);
const concurrency = Number(concurrencyArg);
const clients: readonly [UserServiceClient, UserServiceClient] = [userServiceClient(a), userServiceClient(b)];
// Server streams of this many users; each is re-opened when it ends.
const STREAM_LENGTH = 2_000;
// After a switch, calls already in flight to the other target drain before counting starts.
const SETTLE_MS = 250;

let current: 0 | 1 = 0;
let measuring = false;
let stop = false;
let count = 0;
const errors: Record<string, number> = {};

function unaryOnce(i: number): Promise<void> {
  const target = current;
  return new Promise((resolve) => {
    clients[target].GetUser({ id: String(i % 100) }, {}, (err) => {
      if (err) errors[err.code] = (errors[err.code] ?? 0) + 1;
      else if (measuring && target === current) count++;
      resolve();
    });
  });
}

function streamOnce(): Promise<void> {
  const target = current;
  return new Promise((resolve) => {
    const s = clients[target].ListUsers({ limit: STREAM_LENGTH });
    s.on('data', (_u: User) => {
      if (measuring && target === current) count++;
    });
    s.on('error', (err: { code: number }) => (errors[err.code] = (errors[err.code] ?? 0) + 1));
    s.on('status', () => resolve());
  });
}

async function worker(w: number): Promise<void> {
  for (let i = w; !stop; i += concurrency) {
    if (mode === 'stream') await streamOnce();
    else await unaryOnce(i);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const workers = Array.from({ length: concurrency }, (_, w) => worker(w));
// Warm both channels (connections, JIT) before anything counts.
for (const t of [0, 1] as const) {
  current = t;
  await sleep(700);
}
const rates: [number[], number[]] = [[], []];
const totals = [0, 0];
for (let slice = 0; slice < 2 * Number(slicesArg); slice++) {
  current = (slice % 2) as 0 | 1;
  await sleep(SETTLE_MS);
  count = 0;
  measuring = true;
  const t0 = performance.now();
  await sleep(Number(sliceArg) * 1000);
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  rates[current]!.push(count / seconds);
  totals[current]! += count;
}
stop = true;
await Promise.all(workers);
for (const c of clients) c.close();
console.log(JSON.stringify({ rates, totals, errors }));
