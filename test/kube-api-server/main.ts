/**
 * `npm run kube-test-server`: starts the Kubernetes API test server with the CRDs from crds/,
 * prints the kubeconfig path as the FIRST line of stdout (scripts read exactly that line), then
 * serves until SIGINT/SIGTERM. Flags: --port N, --http (no TLS), --crds DIR, --kubeconfig PATH,
 * --namespace NS (repeatable), --workloads none|ready|pods (simulated controllers, default ready),
 * --verbose (request log on stderr).
 */
import { parseArgs } from 'node:util';
import { startKubeApiServer } from './server.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    http: { type: 'boolean', default: false },
    crds: { type: 'string' },
    kubeconfig: { type: 'string' },
    namespace: { type: 'string', multiple: true },
    verbose: { type: 'boolean', default: false },
    workloads: { type: 'string' },
  },
});

const server = await startKubeApiServer({
  ...(values.port ? { port: Number(values.port) } : {}),
  tls: !values.http,
  ...(values.crds ? { crdDir: values.crds } : {}),
  ...(values.kubeconfig ? { kubeconfigPath: values.kubeconfig } : {}),
  namespaces: values.namespace ?? [],
  ...(values.workloads ? { workloads: values.workloads as 'none' | 'ready' | 'pods' } : {}),
  ...(values.verbose ? { log: (line: string) => process.stderr.write(`${line}\n`) } : {}),
});
process.stdout.write(`${server.kubeconfigPath}\n`);
process.stderr.write(`kube API test server listening on ${server.url}\n`);

let stopping = false;
const shutdown = () => {
  if (stopping) return;
  stopping = true;
  server.stop().then(() => process.exit(0), () => process.exit(1));
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
