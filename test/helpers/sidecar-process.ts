import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../lib/net.ts';
import { sleep } from './eventually.ts';
import { retryOnPortClash } from './port-retry.ts';

const BIN = fileURLToPath(new URL('../../sidecar/bin/sluice-proxy.ts', import.meta.url));

export interface SidecarProcess {
  proc: ChildProcess;
  http: string;
  admin: string;
  localApi: string;
  ports: { http: number; grpc: number; admin: number; localApi: number };
  /** Everything it logged so far (JSON lines on stderr). */
  logs(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * A real `sluice-proxy` process (the CLI a user runs) on free ports, started with the Node the
 * tests run on (Node 24). Resolves once /readyz answers — or, with `waitReady: false`, once the
 * admin port answers at all — and the answer comes from this process (its `--id`), not from
 * another that holds the port while this one dies of EADDRINUSE; then it starts again on others.
 */
export async function spawnSidecar(args: string[], opts: SpawnOptions = {}): Promise<SidecarProcess> {
  return retryOnPortClash(() => spawnOnce(args, opts));
}

export interface SpawnOptions {
  waitReady?: boolean;
  env?: Record<string, string>;
  /** Another build of the CLI (the image's JavaScript), run from `cwd`. Default: the .ts sources. */
  bin?: string;
  cwd?: string;
}

let started = 0;

async function spawnOnce(args: string[], { waitReady = true, env = {}, bin = BIN, cwd }: SpawnOptions): Promise<SidecarProcess> {
  const ports = { http: await freePort(), grpc: await freePort(), admin: await freePort(), localApi: await freePort() };
  const idAt = args.indexOf('--id');
  const id = idAt >= 0 ? (args[idAt + 1] as string) : `test-${process.pid}-${++started}`;
  const proc = spawn(process.execPath, [
    bin,
    '--listen-http', `127.0.0.1:${ports.http}`,
    '--listen-grpc', `127.0.0.1:${ports.grpc}`,
    '--admin', `127.0.0.1:${ports.admin}`,
    '--local-api', `127.0.0.1:${ports.localApi}`,
    ...(idAt >= 0 ? [] : ['--id', id]),
    ...args,
  ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, ...(cwd ? { cwd } : {}) });
  let logs = '';
  proc.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
  proc.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const admin = `http://127.0.0.1:${ports.admin}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`sluice-proxy exited with ${proc.exitCode}: ${logs}`);
    try {
      const res = await fetch(`${admin}/readyz`);
      const status = (await (await fetch(`${admin}/v1/status`)).json()) as { id?: string };
      if (status.id === id && (res.ok || !waitReady)) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`sluice-proxy did not become ready: ${logs}`);
    }
    await sleep(50);
  }
  return {
    proc,
    http: `http://127.0.0.1:${ports.http}`,
    admin,
    localApi: `http://127.0.0.1:${ports.localApi}`,
    ports,
    logs: () => logs,
    exited,
    kill: (signal = 'SIGTERM') => {
      proc.kill(signal);
    },
  };
}
