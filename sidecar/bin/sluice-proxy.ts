#!/usr/bin/env node
// sluice-proxy: the Sluice sidecar. See `sluice-proxy --help` and README.md.
import { parseCliOptions, USAGE, UsageError } from '../src/cli-options.ts';
import { Sidecar } from '../src/sidecar.ts';

let options;
try {
  options = parseCliOptions(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError) {
    process.stderr.write(`sluice-proxy: ${err.message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  throw err;
}
if (options === 'help') {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const sidecar = new Sidecar(options);
try {
  await sidecar.start();
} catch (err) {
  sidecar.logger.error('sidecar failed to start', { err });
  process.exit(1);
}

let signals = 0;
const shutdown = (signal: string) => {
  if (++signals > 1) {
    sidecar.logger.warn('second signal: exiting now', { signal });
    process.exit(1);
  }
  sidecar.stop().then(() => process.exit(0), () => process.exit(1));
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGHUP', () => void sidecar.reloadConfig());
// An uncaught exception leaves state half-updated (a permit never settled, a breaker or counter
// off by one, a socket listener missing) that no code path repairs. Serving on with it would look
// healthy to every probe while misbehaving, so the process logs and exits, and the kubelet
// restarts a clean one — that is what the restart policy is for.
process.on('uncaughtException', (err) => {
  sidecar.logger.error('uncaught exception: exiting so the process is restarted clean', { err, stack: err.stack });
  process.exit(70); // EX_SOFTWARE
});
process.on('unhandledRejection', (err) => sidecar.logger.error('unhandled rejection', { err }));
