import { createRequire } from 'node:module';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { parseRedisTopology, type RedisTopology } from './redis-topology.ts';

export interface RedisConnectOptions {
  /** `redis://`, `redis+cluster://` or `redis+sentinel://` (each with a TLS `rediss…` form). */
  url: string;
  /** Name used in logs and metrics (never the URL: it may carry a password). */
  name: string;
  /** Every command fails after this long instead of waiting on a slow or dead server. */
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  /**
   * Send the commands issued in one event-loop turn as one write (ioredis auto-pipelining): many
   * concurrent decisions or lock rounds then cost one syscall instead of one each.
   */
  autoPipelining?: boolean;
  /** Sentinel credentials kept apart from the URL (e.g. from a Secret of their own); the URL's win otherwise. */
  sentinelUsername?: string | undefined;
  sentinelPassword?: string | undefined;
}

const reconnectBackoff = (attempt: number) => Math.min(2_000, 50 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2);

/**
 * An ioredis client set up for a sidecar that must survive Redis: commands time out, nothing is
 * queued while disconnected (callers get an error at once and fall back), and reconnects back off
 * exponentially with jitter up to 2 s, forever.
 *
 * Every topology gives a client with the same command surface, typed as `Redis`:
 *  - one server: a plain connection;
 *  - Sentinel: a connection to the primary the sentinels name, asked again after every disconnect
 *    and at once when a sentinel announces a failover;
 *  - Cluster: an ioredis `Cluster`, which routes each command by its keys' hash slot and follows
 *    MOVED / ASK. Sluice's key layout puts every script's keys in one slot, so nothing else needs
 *    to know. A command whose node just went away is retried on the refreshed slot map, within
 *    its own command timeout (the timeout bounds the whole command, retries included). Use
 *    `isCluster` for the few things that differ (WAIT goes to a slot's master).
 */
export function connectRedis(opts: RedisConnectOptions): Redis {
  const topology = parseRedisTopology(opts.url);
  const options: RedisOptions = {
    connectionName: `sluice:${opts.name}`,
    commandTimeout: opts.commandTimeoutMs ?? 500,
    connectTimeout: opts.connectTimeoutMs ?? 1_000,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Connected below, once its sockets are guarded.
    lazyConnect: true,
    retryStrategy: reconnectBackoff,
    reconnectOnError: () => false,
    enableAutoPipelining: opts.autoPipelining ?? false,
  };
  const client = topology.kind === 'single' ? new Redis(opts.url, options)
    : topology.kind === 'sentinel' ? sentinelClient(topology, options, opts)
    : (clusterClient(topology, options) as unknown as Redis);
  // An 'error' event without a listener would crash the process; the health tracker reports it.
  client.on('error', () => {});
  if (!isCluster(client)) guardSockets(client);
  // The first attempt's failure is an 'error' event too; reconnecting goes on regardless.
  client.connect().catch(() => {});
  return client;
}

/**
 * ioredis listens for a socket's 'error' with once(): a second error on the same socket — a TLS
 * alert arriving after a failed handshake, say, when the server's certificate is not trusted —
 * would have no listener and end the process. Every socket the client opens gets a lasting
 * listener; ioredis still handles the first error as before.
 */
function guardSockets(client: Redis): void {
  const connector = (client as unknown as { connector: Connector }).connector;
  const connect = connector.connect.bind(connector);
  connector.connect = (...args: unknown[]) => connect(...args).then(keepListening);
}

function keepListening(socket: NodeJS.EventEmitter): NodeJS.EventEmitter {
  socket.on('error', () => {});
  return socket;
}

interface Connector {
  connect(...args: unknown[]): Promise<NodeJS.EventEmitter>;
}
type ConnectorClass = new (options: unknown) => Connector;

/**
 * The same guard for a cluster, as the connector class of every client it makes: besides its
 * nodes it opens short-lived duplicates (to ask a node for the slot map) that no event announces.
 * ioredis exports no name for its plain-socket connector, hence the path.
 */
const GuardedConnector: ConnectorClass = (() => {
  const Standalone = (createRequire(import.meta.url)('ioredis/built/connectors/StandaloneConnector.js') as { default: ConnectorClass }).default;
  return class extends Standalone {
    override connect(...args: unknown[]): Promise<NodeJS.EventEmitter> {
      return super.connect(...args).then(keepListening);
    }
  };
})();

/** True when `client` is a Redis Cluster client (commands are routed per slot). */
export function isCluster(client: Redis): boolean {
  return (client as unknown) instanceof Cluster;
}

/** The cluster behind a client from connectRedis, or undefined for a single server or Sentinel. */
export function asCluster(client: Redis): Cluster | undefined {
  return isCluster(client) ? (client as unknown as Cluster) : undefined;
}

function sentinelClient(t: Extract<RedisTopology, { kind: 'sentinel' }>, options: RedisOptions, opts: RedisConnectOptions): Redis {
  const tls = t.tls ? {} : undefined;
  return new Redis({
    ...options,
    sentinels: t.sentinels.map((n) => ({ host: n.host, port: n.port })),
    name: t.masterName,
    role: 'master',
    db: t.db,
    username: t.username,
    password: t.password,
    sentinelUsername: t.sentinelUsername ?? opts.sentinelUsername,
    sentinelPassword: t.sentinelPassword ?? opts.sentinelPassword,
    tls,
    enableTLSForSentinelMode: t.tls,
    sentinelTLS: tls,
    sentinelCommandTimeout: options.connectTimeout,
    sentinelRetryStrategy: reconnectBackoff,
    // Subscribes to the sentinels' +switch-master: the client moves to a promoted replica as soon as
    // the sentinels agree, instead of when the old primary's socket finally errors.
    failoverDetector: true,
    // A primary demoted by a failover answers writes with READONLY; reconnect asks the sentinels anew.
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
  });
}

function clusterClient(t: Extract<RedisTopology, { kind: 'cluster' }>, options: RedisOptions): Cluster {
  const clusterOptions: ClusterOptions = {
    // connectRedis connects it once the '+node' hook below is in place.
    lazyConnect: true,
    enableOfflineQueue: false,
    enableReadyCheck: true,
    // Writes and reads go to the slot's master: replicas lag (replication is asynchronous).
    scaleReads: 'master',
    enableAutoPipelining: options.enableAutoPipelining,
    clusterRetryStrategy: reconnectBackoff,
    slotsRefreshTimeout: options.connectTimeout,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 50,
    redisOptions: {
      ...options,
      Connector: GuardedConnector as unknown as RedisOptions['Connector'],
      username: t.username,
      password: t.password,
      tls: t.tls ? {} : undefined,
    },
  };
  const cluster = new Cluster(t.nodes.map((n) => ({ host: n.host, port: n.port })), clusterOptions);
  // On an ASK redirection ioredis sends ASKING to the target node and drops the returned promise; with
  // a command timeout, an ASKING that times out (or meets a closed connection) during a slot migration
  // would be an unhandled rejection — which ends a Node process. The command that follows it still
  // reports its own error to its caller.
  cluster.on('+node', (node: Redis) => {
    const asking = node.asking.bind(node);
    node.asking = ((...args: Parameters<Redis['asking']>) => {
      const p = asking(...args);
      p.catch(() => {});
      return p;
    }) as Redis['asking'];
  });
  return cluster;
}

// Health and URL redaction live apart so that code needing them does not load ioredis.
export { RedisHealth, redactUrl, type RedisState } from './redis-health.ts';
export { parseRedisTopology, RedisUrlError, type RedisTopology } from './redis-topology.ts';

/**
 * Resolves once the client is ready, rejects after `timeoutMs`. With no offline queue a command
 * sent before the connection is up fails at once; startup code and tests wait with this first.
 */
export function waitReady(client: Redis, timeoutMs = 5_000): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(Object.assign(new Error(`redis not ready after ${timeoutMs} ms`), { code: 'SLUICE_ERR_REDIS_UNAVAILABLE' }));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}
