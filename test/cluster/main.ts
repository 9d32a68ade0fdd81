/**
 * `npm run cluster`: the test control plane for a person trying Sluice without Docker. The first
 * line printed is `KUBECONFIG=<path>`; it serves until Ctrl-C (or SIGTERM), then stops every
 * process it started and removes its folder.
 */
import { resolve } from 'node:path';
import { startControlPlane } from './control-plane.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const withCrds = !process.argv.includes('--no-crds');

const cp = await startControlPlane({
  crdDir: withCrds ? resolve(ROOT, 'crds') : undefined,
  log: (l) => process.stderr.write(`starting ${l}\n`),
});
process.stdout.write(`KUBECONFIG=${cp.kubeconfigPath}\n`);
process.stderr.write(`API server ${cp.server}; logs and certificates in ${cp.dir}\n`);
process.stderr.write(`processes: ${Object.entries(cp.pids).map(([n, p]) => `${n} ${p}`).join(', ')}\n`);
process.stderr.write('kubectl and helm built for it: ' + `${cp.binaries.kubectl}, ${cp.binaries.helm}\n`);
process.stderr.write('Ctrl-C stops it and leaves nothing behind.\n');

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  process.stderr.write('stopping the control plane...\n');
  await cp.stop();
  process.exit(0);
};
process.once('exit', cp.killNow);
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
setInterval(() => {}, 1 << 30);
