// A paced gRPC load for bench/footprint.bench.ts, run as its own process so the client's CPU is
// apart from the proxy's: unary GetUser calls at a fixed rate (not as fast as possible), so every
// contender does the same work and CPU per call compares like with like.
//   node bench/lib/grpc-paced-load.ts <target> <callsPerSecond> <seconds>
// Prints one JSON line: {"sent": n, "ok": n, "errors": {code: n}, "seconds": s}.
import { userServiceClient } from '../../examples/user-service/user-service.ts';

const [target = '', rateArg = '1000', secondsArg = '30'] = process.argv.slice(2);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const client = userServiceClient(target);
// Calls leave in small batches every TICK_MS; the batch size follows the clock, so a late timer
// catches up instead of lowering the rate.
const TICK_MS = 10;

let sent = 0;
let ok = 0;
const errors: Record<string, number> = {};
let inFlight = 0;

function call(i: number): void {
  inFlight++;
  client.GetUser({ id: String(i % 100) }, { deadline: Date.now() + 5_000 }, (err) => {
    inFlight--;
    if (err) errors[err.code] = (errors[err.code] ?? 0) + 1;
    else ok++;
  });
}

// Warm the channel (connection, HTTP/2 settings) before the clock starts.
await new Promise<void>((resolve) => client.GetUser({ id: '1' }, {}, (err: unknown) => (err ? process.exit(3) : resolve())));
const t0 = performance.now();
await new Promise<void>((resolve) => {
  const timer = setInterval(() => {
    const elapsed = (performance.now() - t0) / 1000;
    const due = Math.min(Math.floor(elapsed * rate), Math.floor(seconds * rate));
    while (sent < due) call(sent++);
    if (elapsed >= seconds) {
      clearInterval(timer);
      resolve();
    }
  }, TICK_MS);
});
const deadline = Date.now() + 10_000;
while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
client.close();
console.log(JSON.stringify({ sent, ok, errors, seconds: (performance.now() - t0) / 1000 }));
