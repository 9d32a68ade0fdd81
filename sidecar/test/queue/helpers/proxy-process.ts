import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { eventually } from '../../../../test/helpers/eventually.ts';
import { retryOnPortClash } from '../../../../test/helpers/port-retry.ts';
import { freePort } from '../../../../lib/net.ts';

const ROOT = resolve(import.meta.dirname, '../../../..');
const NODE = join(ROOT, 'node_modules/.bin/node');
const CLI = join(ROOT, 'sidecar/bin/sluice-proxy.ts');

/** Writes policy documents as a sluice.yaml in a temp dir and returns its path. */
export function writeConfig(docs: readonly unknown[]): string {
  const path = join(mkdtempSync(join(tmpdir(), 'sluice-queue-')), 'sluice.yaml');
  writeFileSync(path, docs.map((d) => stringify(d)).join('---\n'));
  return path;
}

interface StartOptions {
  id: string;
  config: string;
  redisUrl: string;
  appHttp: string;
  labels?: string;
  grace?: string;
}

/**
 * A real `sluice-proxy` process (the CLI, as a pod would run it) that tests can kill -9 or
 * SIGTERM. Its local API is on a known free port so producers and stats can reach it.
 */
export class ProxyProcess {
  readonly id: string;
  readonly localApi: string;
  readonly admin: string;
  private readonly proc: ChildProcess;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr = '';

  private constructor(id: string, proc: ChildProcess, localPort: number, adminPort: number) {
    this.id = id;
    this.proc = proc;
    this.localApi = `http://127.0.0.1:${localPort}`;
    this.admin = `http://127.0.0.1:${adminPort}`;
    this.exited = new Promise((res) => proc.once('exit', (code, signal) => res({ code, signal })));
    proc.stderr?.on('data', (c: Buffer) => {
      this.stderr += c.toString();
      if (process.env.SLUICE_TEST_LOG === '1') process.stderr.write(`[${id}] ${c.toString()}`);
    });
  }

  /**
   * Starts the CLI and waits for its local API. A port found free can be taken by another process
   * before the sidecar binds it (the machine runs other suites too): then it starts again on others.
   */
  static async start(opts: StartOptions): Promise<ProxyProcess> {
    return retryOnPortClash(() => ProxyProcess.startOnce(opts));
  }

  private static async startOnce(opts: StartOptions): Promise<ProxyProcess> {
    const [localPort, adminPort] = [await freePort(), await freePort()];
    const proc = spawn(NODE, [
      CLI, '--config', opts.config, '--labels', opts.labels ?? 'app=worker', '--redis', opts.redisUrl, '--app-http', opts.appHttp,
      '--local-api', `127.0.0.1:${localPort}`, '--admin', `127.0.0.1:${adminPort}`, '--listen-http', '127.0.0.1:0', '--listen-grpc', '127.0.0.1:0',
      '--id', opts.id, '--shutdown-grace', opts.grace ?? '2s', '--log-level', process.env.SLUICE_TEST_LOG === '1' ? 'debug' : 'warn',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    const p = new ProxyProcess(opts.id, proc, localPort, adminPort);
    await eventually(async () => {
      if (proc.exitCode !== null) throw new Error(`sluice-proxy ${opts.id} exited: ${p.stderr}`);
      const res = await fetch(`${p.localApi}/v1/status`);
      if (!res.ok) throw new Error(`status ${res.status}`);
      // Ours, not another process that holds the port while this one dies of EADDRINUSE.
      const { id } = (await res.json()) as { id?: string };
      if (id !== opts.id) throw new Error(`port ${localPort} answers as ${id}, not ${opts.id}`);
    }, { timeoutMs: 45_000, intervalMs: 50 }); // a cold start on a loaded machine takes seconds
    return p;
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async kill9(): Promise<void> {
    if (!this.alive) return;
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM, then the exit (code, signal) once the sidecar has drained. */
  async terminate(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.alive) this.proc.kill('SIGTERM');
    return this.exited;
  }

  waitExit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.exited;
  }
}
