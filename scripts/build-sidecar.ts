// Builds what the sidecar image runs: sidecar/bin, sidecar/src and lib as JavaScript, types
// stripped ahead of time, next to the files they read at runtime (the discovery .proto).
//   node scripts/build-sidecar.ts [outDir]   (default dist/sidecar-image)
// Node can run the .ts sources directly, and development does; but loading the type stripper and
// stripping every module at start-up costs each sidecar about 30 MB of RSS, paid in every pod.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const out = resolve(ROOT, process.argv[2] ?? 'dist/sidecar-image');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');

rmSync(out, { recursive: true, force: true });
execFileSync(process.execPath, [TSC, '-p', join(ROOT, 'tsconfig.sidecar-build.json'), '--outDir', out], { cwd: ROOT, stdio: 'inherit' });
// Files read at runtime beside the code that reads them.
for (const file of walk(join(ROOT, 'lib'))) {
  if (!file.endsWith('.proto')) continue;
  const to = join(out, relative(ROOT, file));
  mkdirSync(dirname(to), { recursive: true });
  cpSync(file, to);
}
// "type": "module" for the .js files.
cpSync(join(ROOT, 'package.json'), join(out, 'package.json'));

function* walk(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield p;
  }
}
