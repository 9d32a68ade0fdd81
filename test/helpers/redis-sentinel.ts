import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../lib/net.ts';
import { eventually, sleep } from './eventually.ts';
import { retryOnPortClash } from './port-retry.ts';
import { RedisServer } from './redis-server.ts';

export const MASTER_NAME = 'sluice-test';
/** A primary silent this long is down to a sentinel (short, for tests). */
export const SENTINEL_DOWN_AFTER_MS = 1_000;

/** One `redis-server --sentinel` process on a free loopback port, stopped by its pid. */
class SentinelProcess {
  readonly port: number;
  private readonly dir: string;
  private proc: ChildProcess | undefined;

  private constructor(port: number) {
    this.port = port;
    this.dir = mkdtempSync(join(tmpdir(), 'sluice-sentinel-'));
  }

  static start(primaryPort: number, password: string | undefined): Promise<SentinelProcess> {
    return retryOnPortClash(async () => {
      const s = new SentinelProcess(await freePort());
      try {
        await s.run(primaryPort, password);
        return s;
      } catch (err) {
        await s.stop();
        throw err;
      }
    }, (err) => String(err).includes('exited'));
  }

  private async run(primaryPort: number, password: string | undefined): Promise<void> {
    const conf = join(this.dir, 'sentinel.conf');
    // Sentinel rewrites its config file as it learns the topology: it must be writable and its own.
    writeFileSync(conf, [
      `port ${this.port}`, 'bind 127.0.0.1', 'protected-mode no', `dir ${this.dir}`,
      `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${primaryPort} 2`,
      `sentinel down-after-milliseconds ${MASTER_NAME} ${SENTINEL_DOWN_AFTER_MS}`,
      `sentinel failover-timeout ${MASTER_NAME} 10000`,
      `sentinel parallel-syncs ${MASTER_NAME} 1`,
      ...(password ? [`requirepass ${password}`, `sentinel sentinel-pass ${password}`] : []),
      '',
    ].join('\n'));
    const proc = spawn('redis-server', [conf, '--sentinel', '--loglevel', 'warning'], { stdio: 'ignore' });
    this.proc = proc;
    await new Promise<void>((resolve, reject) => {
      proc.once('error', reject);
      proc.once('spawn', () => resolve());
    });
    const deadline = Date.now() + 10_000;
    while (!(await answers(this.port, password))) {
      if (proc.exitCode !== null) throw new Error(`redis-server --sentinel exited with ${proc.exitCode} on port ${this.port}`);
      if (Date.now() > deadline) throw new Error(`sentinel on port ${this.port} did not answer`);
      await sleep(20);
    }
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGKILL');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** True when a sentinel on `port` answers PING (with its password: it refuses PING without). */
async function answers(port: number, password: string | undefined): Promise<boolean> {
  const c = new Redis(port, '127.0.0.1', { password, lazyConnect: true, maxRetriesPerRequest: 0, commandTimeout: 500, connectTimeout: 500, retryStrategy: () => null });
  c.on('error', () => {});
  try {
    await c.connect();
    return (await c.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    c.disconnect();
  }
}

/**
 * A primary, its replica and three sentinels watching them (quorum 2), all real processes on free
 * loopback ports. `sentinelPassword` gives the sentinels credentials of their own (the data nodes
 * have none), so a client must be told both apart.
 */
export class RedisSentinelGroup {
  primary: RedisServer;
  replica: RedisServer;
  readonly sentinels: readonly SentinelProcess[];
  readonly sentinelPassword: string | undefined;

  private constructor(primary: RedisServer, replica: RedisServer, sentinels: readonly SentinelProcess[], sentinelPassword: string | undefined) {
    this.primary = primary;
    this.replica = replica;
    this.sentinels = sentinels;
    this.sentinelPassword = sentinelPassword;
  }

  static async start({ sentinelPassword }: { sentinelPassword?: string } = {}): Promise<RedisSentinelGroup> {
    const primary = await RedisServer.start();
    const owned: { stop(): Promise<void> }[] = [primary];
    try {
      const replica = await RedisServer.start({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
      owned.push(replica);
      const sentinels: SentinelProcess[] = [];
      for (let i = 0; i < 3; i++) {
        const s = await SentinelProcess.start(primary.port, sentinelPassword);
        sentinels.push(s);
        owned.push(s);
      }
      const group = new RedisSentinelGroup(primary, replica, sentinels, sentinelPassword);
      // Ready when the replica is in sync and every sentinel sees the replica and the other two.
      await eventually(async () => {
        const info = await group.ask(replica.port, undefined, 'INFO', 'replication');
        if (!/master_link_status:up/.test(info)) throw new Error('replica not in sync');
        for (const s of sentinels) {
          const m = await group.ask<string[]>(s.port, sentinelPassword, 'SENTINEL', 'MASTER', MASTER_NAME);
          const field = (k: string) => Number(m[m.indexOf(k) + 1]);
          if (field('num-slaves') < 1 || field('num-other-sentinels') < 2) throw new Error('sentinels still discovering');
        }
      }, { timeoutMs: 30_000, intervalMs: 200 });
      return group;
    } catch (err) {
      await Promise.all(owned.map((o) => o.stop()));
      throw err;
    }
  }

  url(opts: { sentinelPassword?: boolean } = {}): string {
    const q = opts.sentinelPassword && this.sentinelPassword ? `?sentinelPassword=${encodeURIComponent(this.sentinelPassword)}` : '';
    return `redis+sentinel://${this.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${MASTER_NAME}${q}`;
  }

  /** The port the sentinels currently name as primary. */
  async currentPrimaryPort(): Promise<number> {
    const [, port] = await this.ask<[string, string]>(this.sentinels[0]!.port, this.sentinelPassword, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME);
    return Number(port);
  }

  /**
   * SIGKILLs the primary and waits until the sentinels have promoted the replica; then restarts the
   * old primary, as its pod would be, and waits until the sentinels have made it the new primary's
   * replica and it is in sync (until then WAIT has no replica to count).
   */
  async killPrimaryAndWaitForFailover(timeoutMs = 30_000): Promise<void> {
    const old = this.primary;
    await old.kill();
    await eventually(async () => {
      if ((await this.currentPrimaryPort()) !== this.replica.port) throw new Error('not failed over yet');
      const role = await this.ask<string>(this.replica.port, undefined, 'INFO', 'replication');
      if (!/role:master/.test(role)) throw new Error('replica not promoted yet');
    }, { timeoutMs, intervalMs: 100 });
    this.primary = this.replica;
    this.replica = old;
    await old.restart();
    await eventually(async () => {
      const info = await this.ask<string>(old.port, undefined, 'INFO', 'replication');
      if (!new RegExp(`master_port:${this.primary.port}\\b`).test(info) || !/master_link_status:up/.test(info)) throw new Error('old primary not yet a replica in sync');
    }, { timeoutMs, intervalMs: 100 });
  }

  async ask<T = string>(port: number, password: string | undefined, ...args: string[]): Promise<T> {
    const c = new Redis(port, '127.0.0.1', { password, lazyConnect: true, maxRetriesPerRequest: 0, commandTimeout: 5_000, retryStrategy: () => null });
    c.on('error', () => {});
    try {
      await c.connect();
      return (await c.call(args[0]!, ...args.slice(1))) as T;
    } finally {
      c.disconnect();
    }
  }

  async stop(): Promise<void> {
    await Promise.all([this.primary.stop(), this.replica.stop(), ...this.sentinels.map((s) => s.stop())]);
  }
}
