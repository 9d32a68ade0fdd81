import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, redisAnswers } from '../../lib/net.ts';
import { sleep } from './eventually.ts';
import { retryOnPortClash } from './port-retry.ts';

/**
 * A real redis-server process on a free loopback port, owned by a test. It can be killed,
 * paused (SIGSTOP), resumed and restarted on the same port — with its data when `appendonly`.
 */
export class RedisServer {
  readonly port: number;
  readonly dir: string;
  private proc: ChildProcess | undefined;
  private readonly appendonly: boolean;
  private readonly cluster: boolean;
  /**
   * A cluster node's bus port, chosen free like the data port. Left to Redis it would be the data
   * port + 10 000: a port nobody checked, which may be another test's listener (or over 65 535).
   */
  private readonly busPort: number;
  private readonly extraArgs: readonly string[];

  private constructor(port: number, appendonly: boolean, cluster: boolean, busPort: number, extraArgs: readonly string[]) {
    this.port = port;
    this.appendonly = appendonly;
    this.cluster = cluster;
    this.busPort = busPort;
    this.extraArgs = extraArgs;
    this.dir = mkdtempSync(join(tmpdir(), 'sluice-redis-'));
  }

  /**
   * `cluster`: a Redis Cluster node (no slots assigned): it answers CLUSTER KEYSLOT, not data commands.
   * `args`: more redis-server options (`--cluster-node-timeout 1000`, `--replicaof host port`).
   */
  static async start({ appendonly = false, cluster = false, args = [] }: { appendonly?: boolean; cluster?: boolean; args?: readonly string[] } = {}): Promise<RedisServer> {
    // redis-server exits when its port is taken; it says why only in its own log.
    return retryOnPortClash(async () => {
      const server = new RedisServer(await freePort(), appendonly, cluster, cluster ? await freePort() : 0, args);
      try {
        await server.restart();
        return server;
      } catch (err) {
        await server.stop();
        throw err;
      }
    }, (err) => String(err).includes('exited'));
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Starts the process (again) on the same port and waits until it answers PING. */
  async restart(): Promise<void> {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) return;
    const args = [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir,
      '--save', '', '--appendonly', this.appendonly ? 'yes' : 'no', '--appendfsync', 'always',
      '--protected-mode', 'no', '--daemonize', 'no', '--loglevel', 'warning',
      ...(this.cluster ? ['--cluster-enabled', 'yes', '--cluster-port', String(this.busPort), '--cluster-config-file', join(this.dir, 'nodes.conf')] : []),
      ...this.extraArgs,
    ];
    const proc = spawn('redis-server', args, { stdio: 'ignore' });
    this.proc = proc;
    await new Promise<void>((resolve, reject) => {
      proc.once('error', reject);
      proc.once('spawn', () => resolve());
    });
    const deadline = Date.now() + 10_000;
    // Answered by this process, not by another server that holds the port while this one exits.
    while (!(await redisAnswers(this.port)) || (await serverPid(this.port)) !== proc.pid) {
      if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode} on port ${this.port}`);
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer PING`);
      await sleep(20);
    }
  }

  /** SIGKILL, as a crash would; the port stays reserved for restart(). */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGCONT');
    proc.kill('SIGKILL');
    await exited;
  }

  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  resume(): void {
    this.proc?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The process id the Redis server on 127.0.0.1:port reports (INFO server), or undefined. */
function serverPid(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let text = '';
    const done = (pid: number | undefined) => {
      sock.destroy();
      resolve(pid);
    };
    sock.setTimeout(500, () => done(undefined));
    sock.once('error', () => done(undefined));
    sock.once('connect', () => sock.write('INFO server\r\n'));
    sock.on('data', (buf) => {
      text += buf.toString();
      const m = /process_id:(\d+)\r/.exec(text);
      if (m) done(Number(m[1]));
    });
  });
}

/** Starts n independent servers at once (RedLock nodes). */
export async function startRedisServers(n: number, opts?: { appendonly?: boolean }): Promise<RedisServer[]> {
  return Promise.all(Array.from({ length: n }, () => RedisServer.start(opts)));
}
