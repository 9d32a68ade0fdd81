// The push hub app: `node examples/push-hub/main.ts`. Configured by env:
//   PORT (8090), HOST (127.0.0.1), REDIS_URL (redis://127.0.0.1:6379), REPLICA (hostname),
//   SLUICE_LOCAL_API (http://127.0.0.1:15020: its sidecar's local API), ELECTION (push-broadcaster),
//   FEED_CHANNEL (feed), FEED_EVERY_MS (1000), PING_EVERY_MS (15000)
// Logs are JSON lines on stdout: listening, and every change of this replica's leadership.
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { Broadcaster } from './broadcaster.ts';
import { PushHub } from './hub.ts';

const env = process.env;
const log = (msg: string, fields: Record<string, unknown> = {}) => process.stdout.write(`${JSON.stringify({ at: new Date().toISOString(), msg, replica, ...fields })}\n`);
const redisUrl = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redisOpts = { maxRetriesPerRequest: 1, commandTimeout: 1_000, retryStrategy: (n: number) => Math.min(2_000, 100 * n) };
const pub = new Redis(redisUrl, redisOpts);
const sub = new Redis(redisUrl, { ...redisOpts, commandTimeout: undefined });
pub.on('error', () => {});
sub.on('error', () => {});

const replica = env.REPLICA ?? hostname();
const hub = new PushHub({ pub, sub, replica, pingIntervalMs: Number(env.PING_EVERY_MS ?? 15_000) });
const port = await hub.listen(Number(env.PORT ?? 8090), env.HOST ?? '127.0.0.1');
const channel = env.FEED_CHANNEL ?? 'feed';
const localApi = env.SLUICE_LOCAL_API ?? 'http://127.0.0.1:15020';
const broadcaster = new Broadcaster({
  localApi,
  election: env.ELECTION ?? 'push-broadcaster',
  tickMs: Number(env.FEED_EVERY_MS ?? 1_000),
  replica,
  publish: (data) => hub.publish(channel, data),
  onChange: (now) => log(now.leader ? 'leading: broadcasting the feed' : 'not leading: feed stopped here', { fencingToken: now.fencingToken ?? null, holder: now.holder ?? null }),
});
broadcaster.start();
log('push hub listening', { port, channel });

const shutdown = async () => {
  broadcaster.stop();
  // The sidecar closes our clients with 1012, spread over its drain window, so that they do not
  // all reconnect to the other replicas at once; without a sidecar this fails fast and the hub
  // closes them itself.
  await fetch(`${localApi}/v1/websocket/drain`, { method: 'POST', signal: AbortSignal.timeout(30_000) }).catch(() => {});
  await hub.close();
  pub.disconnect();
  sub.disconnect();
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
