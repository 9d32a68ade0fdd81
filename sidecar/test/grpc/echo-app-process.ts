/**
 * The echo app as a process of its own, for tests that must freeze the app (SIGSTOP) — something
 * no in-process server can do, since Node answers HTTP/2 PINGs itself while its loop runs.
 * Prints `listening <port>` once bound; runs until killed.
 *
 *   node sidecar/test/grpc/echo-app-process.ts [port]
 */
import { startEchoApp } from './echo-app.ts';

const app = await startEchoApp({ port: Number(process.argv[2] ?? 0) });
process.stdout.write(`listening ${app.port}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
