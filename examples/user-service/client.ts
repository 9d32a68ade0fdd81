// Fires concurrent GetUser calls at a target and prints how many ended with each status code.
//   node examples/user-service/client.ts --target 127.0.0.1:15081 --calls 2000 --concurrency 50
//   node examples/user-service/client.ts --method ListUsers ...   (server streams of 3 users)
//   node examples/user-service/client.ts --target 127.0.0.1:50051 --set-fail-code 14   (UserAdmin)
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { userAdminClient, userServiceClient } from './user-service.ts';

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: '127.0.0.1:15081' },
    calls: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '50' },
    'deadline-ms': { type: 'string', default: '5000' },
    'set-fail-code': { type: 'string' },
    'set-delay-ms': { type: 'string' },
    method: { type: 'string', default: 'GetUser' },
    json: { type: 'boolean', default: false },
  },
});

if (values['set-fail-code'] !== undefined || values['set-delay-ms'] !== undefined) {
  const admin = userAdminClient(values.target);
  const req = { failCode: Number(values['set-fail-code'] ?? 0), delayMs: Number(values['set-delay-ms'] ?? 0) };
  admin.SetBehavior(req, (err, res) => {
    if (err) {
      console.error(`SetBehavior failed: ${grpc.status[err.code]} ${err.details}`);
      process.exit(1);
    }
    console.log(`behavior now ${JSON.stringify(res)}`);
    admin.close();
  });
} else {
  const client = userServiceClient(values.target);
  const total = Number(values.calls);
  const concurrency = Number(values.concurrency);
  const counts: Record<string, number> = {};
  const pushback: number[] = [];
  let started = 0;
  const t0 = performance.now();
  const method = values.method;
  if (method !== 'GetUser' && method !== 'ListUsers') throw new Error(`--method must be GetUser or ListUsers, not ${method}`);
  const record = (err: grpc.ServiceError | null | undefined) => {
    const name = err ? grpc.status[err.code] ?? String(err.code) : 'OK';
    counts[name] = (counts[name] ?? 0) + 1;
    const p = err?.metadata?.get('grpc-retry-pushback-ms')[0];
    if (p !== undefined) pushback.push(Number(p));
  };
  const one = (): Promise<void> => new Promise((resolve) => {
    const deadline = Date.now() + Number(values['deadline-ms']);
    if (method === 'ListUsers') {
      const stream = client.ListUsers({ limit: 3 }, { deadline });
      let failed: grpc.ServiceError | undefined;
      stream.on('data', () => {});
      stream.on('error', (err: grpc.ServiceError) => (failed = err));
      stream.on('status', () => {
        record(failed);
        resolve();
      });
      return;
    }
    client.GetUser({ id: String(started % 100) }, { deadline }, (err) => {
      record(err);
      resolve();
    });
  });
  const worker = async () => {
    while (started < total) {
      started++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  client.close();
  if (values.json) {
    console.log(JSON.stringify({ counts, seconds }));
  } else {
    console.log(`${total} ${method} calls in ${seconds.toFixed(2)}s (${Math.round(total / seconds)}/s), concurrency ${concurrency}`);
    for (const [code, n] of Object.entries(counts).sort((a, b) => b[1] - a[1])) console.log(`  ${code.padEnd(20)} ${n}`);
    if (pushback.length) console.log(`  grpc-retry-pushback-ms: min ${Math.min(...pushback)}, max ${Math.max(...pushback)}`);
  }
}
