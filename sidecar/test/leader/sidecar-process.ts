import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../../../lib/net.ts';
import { eventually } from '../../../test/helpers/eventually.ts';
import { retryOnPortClash } from '../../../test/helpers/port-retry.ts';
import type { LeadershipStatus } from '../../src/leader/leader-elector.ts';

const BIN = resolve(import.meta.dirname, '../../bin/sluice-proxy.ts');

/** A standalone config with one LeaderElection selecting `app: push-hub`. */
export function electionConfig(ttl: string, renewEvery: string, name = 'push-broadcaster'): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-le-'));
  const path = join(dir, 'sluice.yaml');
  writeFileSync(path, `apiVersion: sluice.dev/v1alpha1
kind: LeaderElection
metadata: {name: ${name}, namespace: shop}
spec:
  selector: {matchLabels: {app: push-hub}}
  ttl: ${ttl}
  renewEvery: ${renewEvery}
`);
  return path;
}

/** A real `sluice-proxy` process in standalone mode, with its local API on a free port. */
export class SidecarProcess {
  readonly id: string;
  readonly localApi: string;
  private readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  stderr = '';

  private constructor(id: string, localApi: string, proc: ChildProcess) {
    this.id = id;
    this.localApi = localApi;
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.stderr?.on('data', (b: Buffer) => {
      this.stderr = (this.stderr + b.toString()).slice(-20_000);
    });
  }

  static async start(opts: { id: string; config: string; lockNodes?: readonly string[]; redis?: string }): Promise<SidecarProcess> {
    return retryOnPortClash(() => SidecarProcess.startOnce(opts));
  }

  private static async startOnce(opts: { id: string; config: string; lockNodes?: readonly string[]; redis?: string }): Promise<SidecarProcess> {
    const localApi = `127.0.0.1:${await freePort()}`;
    const args = [BIN, '--config', opts.config, '--labels', 'app=push-hub', '--id', opts.id,
      '--local-api', localApi, '--admin', `127.0.0.1:${await freePort()}`, '--log-level', 'info'];
    if (opts.lockNodes) args.push('--lock-nodes', opts.lockNodes.join(','));
    if (opts.redis) args.push('--redis', opts.redis);
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NODE_NO_WARNINGS: '1' } });
    const sidecar = new SidecarProcess(opts.id, localApi, proc);
    await eventually(async () => {
      if (proc.exitCode !== null) throw new Error(`sluice-proxy exited: ${sidecar.stderr}`);
      // Ours, not another process that holds the port while this one dies of EADDRINUSE.
      const status = (await (await fetch(`http://${localApi}/v1/status`)).json()) as { id?: string };
      if (status.id !== opts.id) throw new Error(`port ${localApi} answers as ${status.id}, not ${opts.id}`);
    }, { timeoutMs: 15_000 });
    return sidecar;
  }

  async leadership(name = 'push-broadcaster'): Promise<LeadershipStatus> {
    const res = await fetch(`http://${this.localApi}/v1/leadership/${name}`, { signal: AbortSignal.timeout(2_000) });
    if (res.status !== 200) throw new Error(`GET leadership: ${res.status} ${await res.text()}`);
    return (await res.json()) as LeadershipStatus;
  }

  async request(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`http://${this.localApi}${path}`, {
      method, body: body === undefined ? undefined : JSON.stringify(body), headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(5_000),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  signal(sig: NodeJS.Signals): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(sig);
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.signal('SIGCONT');
    this.signal('SIGKILL');
    await this.exited;
  }
}
