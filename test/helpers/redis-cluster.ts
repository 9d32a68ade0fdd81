import { Redis } from 'ioredis';
import { eventually } from './eventually.ts';
import { RedisServer } from './redis-server.ts';
import { runCommand } from './run-command.ts';

/** Milliseconds a cluster node may be silent before it is failed over (short, for tests). */
export const CLUSTER_NODE_TIMEOUT_MS = 1_000;

/**
 * A real Redis Cluster of redis-server processes on free loopback ports, created with
 * `redis-cli --cluster create`: `masters` masters, each with `replicasPerMaster` replicas. Owned by
 * one test file; every process is stopped by its pid.
 */
export class RedisClusterProcesses {
  readonly nodes: readonly RedisServer[];

  private constructor(nodes: readonly RedisServer[]) {
    this.nodes = nodes;
  }

  static async start({ masters = 3, replicasPerMaster = 1 } = {}): Promise<RedisClusterProcesses> {
    const n = masters * (1 + replicasPerMaster);
    const started = await Promise.allSettled(Array.from({ length: n }, () => RedisServer.start({
      cluster: true,
      args: ['--cluster-node-timeout', String(CLUSTER_NODE_TIMEOUT_MS), '--cluster-require-full-coverage', 'no'],
    })));
    const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const cluster = new RedisClusterProcesses(nodes);
    try {
      const failed = started.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      const res = await runCommand('redis-cli', [
        '--cluster', 'create', ...nodes.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', String(replicasPerMaster), '--cluster-yes',
      ], { timeoutMs: 60_000 });
      if (res.code !== 0) throw new Error(`redis-cli --cluster create failed: ${res.stdout}${res.stderr}`);
      await cluster.waitHealthy(masters, 30_000);
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  /** `redis+cluster://` seed URL naming every node. */
  get url(): string {
    return `redis+cluster://${this.nodes.map((s) => `127.0.0.1:${s.port}`).join(',')}`;
  }

  /** Runs one command on one node with a short-lived plain connection. */
  async onNode<T>(node: RedisServer, ...args: (string | number)[]): Promise<T> {
    const c = new Redis(node.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, commandTimeout: 5_000, retryStrategy: () => null });
    c.on('error', () => {});
    try {
      await c.connect();
      return (await c.call(String(args[0]), ...args.slice(1).map(String))) as T;
    } finally {
      c.disconnect();
    }
  }

  /** The node serving `slot` as master, as the cluster itself says (asked of a live node). */
  async masterOfSlot(slot: number, alive: readonly RedisServer[] = this.liveNodes()): Promise<RedisServer> {
    for (const asked of alive) {
      try {
        const slots = await this.onNode<[number, number, [string, number, string]][]>(asked, 'CLUSTER', 'SLOTS');
        const range = slots.find(([from, to]) => slot >= from && slot <= to);
        const port = range?.[2][1];
        const node = this.nodes.find((s) => s.port === port);
        if (node) return node;
      } catch {
        // a node that is going down; ask the next
      }
    }
    throw new Error(`no live node knows who serves slot ${slot}`);
  }

  /** Node id of a node (CLUSTER MYID). */
  nodeId(node: RedisServer): Promise<string> {
    return this.onNode<string>(node, 'CLUSTER', 'MYID');
  }

  /** Nodes whose process is running (not killed by a test). */
  liveNodes(): RedisServer[] {
    return this.nodes.filter((s) => !this.killed.has(s));
  }

  private readonly killed = new Set<RedisServer>();

  /** SIGKILLs a node, as a crash would. */
  async kill(node: RedisServer): Promise<void> {
    this.killed.add(node);
    await node.kill();
  }

  /**
   * SIGKILLs the master serving `slot`, waits until the cluster has promoted its replica, then
   * restarts the killed node (its nodes.conf survives, as a pod's volume would) and waits until it
   * has rejoined as the new master's replica, in sync.
   */
  async killMasterAndWaitForFailover(slot: number, masters: number, timeoutMs = 30_000): Promise<void> {
    const old = await this.masterOfSlot(slot);
    await this.kill(old);
    await eventually(async () => {
      const now = await this.masterOfSlot(slot);
      if (now === old) throw new Error('not failed over yet');
    }, { timeoutMs, intervalMs: 100 });
    await this.waitHealthy(masters, timeoutMs);
    const promoted = await this.masterOfSlot(slot);
    await old.restart();
    this.killed.delete(old);
    await eventually(async () => {
      const info = await this.onNode<string>(old, 'INFO', 'replication');
      if (!new RegExp(`master_port:${promoted.port}\\b`).test(info) || !/master_link_status:up/.test(info)) throw new Error('old master not yet a replica in sync');
    }, { timeoutMs, intervalMs: 100 });
  }

  /** Waits until every live node reports cluster_state:ok and `masters` masters cover all slots. */
  async waitHealthy(masters: number, timeoutMs: number): Promise<void> {
    await eventually(async () => {
      for (const node of this.liveNodes()) {
        const info = await this.onNode<string>(node, 'CLUSTER', 'INFO');
        if (!/cluster_state:ok/.test(info)) throw new Error(`node ${node.port}: ${/cluster_state:\w+/.exec(info)?.[0]}`);
        if (!new RegExp(`cluster_size:${masters}\\b`).test(info)) throw new Error(`node ${node.port}: ${/cluster_size:\d+/.exec(info)?.[0]}`);
        if (!/cluster_slots_ok:16384/.test(info)) throw new Error(`node ${node.port}: not all slots ok`);
      }
    }, { timeoutMs, intervalMs: 200 });
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((s) => s.stop()));
  }
}
