#!/usr/bin/env node
// sluice-operator: watches Sluice policies, writes their status, streams snapshots to sidecars.
// See `sluice-operator --help` and operator/README.md.
import { UsageError } from '../src/errors.ts';
import { Operator } from '../src/operator.ts';
import { parseOperatorOptions, USAGE } from '../src/operator-options.ts';
// sidecar-injection webhook + its self-managed certificates (operator/src/injection/).
import { injectionOptionsFromEnv, startInjection, type Injection } from '../src/injection/start-injection.ts';

let options;
try {
  options = parseOperatorOptions(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError) {
    process.stderr.write(`sluice-operator: ${err.message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  throw err;
}
if (options === 'help') {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const operator = new Operator(options);
let injection: Injection | undefined;
try {
  // On when the chart sets SLUICE_OPERATOR_INJECTION_CONFIG; every replica serves the webhook.
  const injectionOptions = injectionOptionsFromEnv(process.env, operator.client, operator.logger, operator.metrics.registry);
  // The webhook's certificate manager also secures PolicyDiscovery (unless
  // --discovery-insecure). It starts first, so discovery is never bound in plaintext in a cluster:
  // the first certificate reaches the server before operator.start() binds it.
  if (injectionOptions && !options.discoveryInsecure) {
    injectionOptions.discovery = { serviceName: options.discoveryService ?? 'sluice-discovery', onCertificate: (c) => operator.discovery.setCertificate(c) };
  }
  if (injectionOptions) injection = await startInjection(injectionOptions);
  await operator.start();
} catch (err) {
  operator.logger.error('operator failed to start', { err });
  process.exit(1);
}

let signals = 0;
const shutdown = (signal: string) => {
  if (++signals > 1) process.exit(1);
  operator.logger.info('shutting down', { signal });
  // stop the webhook before the operator closes the shared API client.
  Promise.resolve(injection?.stop()).then(() => operator.stop()).then(() => process.exit(0), () => process.exit(1));
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('unhandledRejection', (err) => operator.logger.error('unhandled rejection', { err }));
