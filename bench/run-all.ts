// `npm run bench`: runs every bench/*.bench.ts that exists, one after another (never in parallel:
// they would measure each other), and summarises which finished. Ctrl-C stops the running one,
// which stops everything it started.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const dir = import.meta.dirname;
const only = process.argv.slice(2); // optional names to run, e.g. `npm run bench -- http ws`
const benches = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.includes(f.replace(/\.bench\.ts$/, '')))
  // The before/after comparison needs a second checkout to compare with.
  .filter((f) => f !== 'regression.bench.ts' || process.env.BENCH_BASE)
  .sort();

if (benches.length === 0) {
  console.error(only.length ? `no benchmark named ${only.join(', ')} in ${dir}` : `no *.bench.ts in ${dir}`);
  process.exit(1);
}

let interrupted = false;
let current: ReturnType<typeof spawn> | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupted = true;
    // The child got the terminal's SIGINT too; a SIGTERM from elsewhere is passed on.
    if (signal === 'SIGTERM') current?.kill('SIGTERM');
  });
}

const results: { name: string; status: string; seconds: number }[] = [];
for (const file of benches) {
  if (interrupted) break;
  console.log(`\n=== ${file} ${'='.repeat(Math.max(0, 60 - file.length))}`);
  const started = Date.now();
  const status = await new Promise<string>((resolve) => {
    current = spawn(process.execPath, [join(dir, file)], { stdio: 'inherit' });
    current.once('exit', (code, signal) => resolve(signal ? `killed (${signal})` : code === 0 ? 'ok' : `failed (exit ${code})`));
    current.once('error', (err) => resolve(`failed (${err.message})`));
  });
  current = undefined;
  results.push({ name: file, status, seconds: (Date.now() - started) / 1000 });
}

console.log('\n=== summary');
for (const r of results) console.log(`  ${r.status.padEnd(18)} ${r.name}  (${r.seconds.toFixed(0)} s)`);
for (const file of benches.slice(results.length)) console.log(`  ${'not run'.padEnd(18)} ${file}`);
process.exitCode = results.every((r) => r.status === 'ok') && results.length === benches.length ? 0 : 1;
