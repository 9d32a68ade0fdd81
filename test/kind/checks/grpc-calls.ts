/**
 * Calls the UserService through a target with the example client and asserts on how the calls
 * ended, by gRPC status. Runs in the e2e client pod (the examples image, cwd /app), fed on stdin:
 *
 *   kubectl exec -i -n sluice-e2e client -- node --input-type=module-typescript - \
 *     <target> <GetUser|ListUsers> <calls> <concurrency> <expectation>... < test/kind/checks/grpc-calls.ts
 *
 * An expectation is `CODE=N`, `CODE>=N`, `CODE<=N` (a missing code counts 0), or `only:CODE,CODE`
 * (no other status occurred). Self-contained (node: modules only): stdin scripts cannot import
 * files relative to themselves.
 */
import { spawnSync } from 'node:child_process';

const CLIENT = process.env.USER_SERVICE_CLIENT ?? 'examples/user-service/client.ts';
const [target, method, calls, concurrency, ...expectations] = process.argv.slice(2);
if (!target || !method || !calls || !concurrency) {
  console.error('usage: grpc-calls.ts <target> <method> <calls> <concurrency> <expectation>...');
  process.exit(2);
}

const run = spawnSync(process.execPath, [CLIENT, '--target', target, '--method', method, '--calls', calls, '--concurrency', concurrency, '--json'], {
  encoding: 'utf8',
  timeout: 120_000,
});
if (run.status !== 0) {
  console.error(`the client failed (exit ${run.status ?? run.signal}): ${run.stderr}`);
  process.exit(1);
}
const last = run.stdout.trim().split('\n').pop() ?? '';
const { counts, seconds } = JSON.parse(last) as { counts: Record<string, number>; seconds: number };
console.log(`${calls} ${method} calls to ${target} in ${seconds.toFixed(2)}s: ${JSON.stringify(counts)}`);

const failures: string[] = [];
for (const e of expectations) {
  if (e.startsWith('only:')) {
    const allowed = new Set(e.slice(5).split(','));
    const others = Object.keys(counts).filter((c) => !allowed.has(c));
    if (others.length) failures.push(`${e}: also saw ${others.map((c) => `${c} ×${counts[c]}`).join(', ')}`);
    continue;
  }
  const m = /^([A-Z_]+)(>=|<=|=)(\d+)$/.exec(e);
  if (!m) {
    failures.push(`cannot read expectation ${JSON.stringify(e)}`);
    continue;
  }
  const [, code = '', op, n] = m;
  const got = counts[code] ?? 0;
  const want = Number(n);
  const ok = op === '=' ? got === want : op === '>=' ? got >= want : got <= want;
  if (!ok) failures.push(`expected ${code} ${op} ${want}, got ${got}`);
}
if (failures.length) {
  for (const f of failures) console.error(`FAIL ${f}`);
  process.exit(1);
}
