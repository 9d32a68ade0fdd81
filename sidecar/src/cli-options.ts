import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { checkLockNodeUrls, checkRedisUrl, readFlags, withSentinelPassword, UsageError } from '../../lib/cli-flags.ts';
import { parseLabels } from '../../lib/policy/selector.ts';
import { TrustedProxies } from './http/client-address.ts';
import { ESCAPED_SLASH_ACTIONS, type EscapedSlashAction } from './http/path-normalisation.ts';
import type { SidecarOptions } from './sidecar.ts';

const FLAGS = {
  config: { type: 'string' },
  operator: { type: 'string' },
  'operator-ca': { type: 'string' },
  'operator-server-name': { type: 'string' },
  'app-http': { type: 'string' },
  'app-grpc': { type: 'string' },
  'listen-http': { type: 'string', default: ':15080' },
  'listen-grpc': { type: 'string', default: ':15081' },
  admin: { type: 'string', default: ':15000' },
  'local-api': { type: 'string', default: '127.0.0.1:15020' },
  labels: { type: 'string' },
  redis: { type: 'string' },
  'redis-timeout': { type: 'string', default: '100ms' },
  'redis-sentinel-password': { type: 'string' },
  'lock-nodes': { type: 'string' },
  id: { type: 'string' },
  'pod-name': { type: 'string' },
  'pod-namespace': { type: 'string' },
  'token-file': { type: 'string' },
  'max-body': { type: 'string', default: '10485760' },
  'headers-timeout': { type: 'string', default: '10s' },
  'upstream-timeout': { type: 'string', default: '60s' },
  'shutdown-grace': { type: 'string', default: '20s' },
  'log-level': { type: 'string', default: 'info' },
  'grpc-max-concurrent-streams': { type: 'string', default: '1000' },
  'grpc-initial-window': { type: 'string', default: '65535' },
  'grpc-max-message': { type: 'string', default: '4194304' },
  'grpc-keepalive': { type: 'string', default: '30s' },
  'websocket-ping-interval': { type: 'string', default: '30s' },
  'websocket-ping-timeout': { type: 'string', default: '10s' },
  'websocket-drain-window': { type: 'string', default: '10s' },
  'websocket-quota-lease': { type: 'string', default: '30s' },
  'path-escaped-slashes': { type: 'string', default: 'reject' },
  'trusted-proxies': { type: 'string' },
  'grpc-max-connection-age': { type: 'string' },
  'grpc-max-connection-age-grace': { type: 'string', default: '30s' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const USAGE = `Usage: sluice-proxy [options]
  --config sluice.yaml          standalone: policies from a file, reloaded on change
  --operator host:port          or: policies streamed from the operator
  --operator-ca FILE            operator mode: CA bundle (PEM file, or the PEM itself as injected in
                                SLUICE_OPERATOR_CA) to verify the operator; TLS only. Without it:
                                plaintext, with a warning (standalone/dev operators)
  --operator-server-name NAME   operator mode: name to verify in the operator's certificate
                                (default: the host of --operator)
  --app-http 127.0.0.1:8080     where the app serves HTTP / WebSocket
  --app-grpc 127.0.0.1:50051    where the app serves gRPC
  --listen-http :15080          inbound HTTP/WebSocket listener
  --listen-grpc :15081          inbound gRPC (h2c) listener
  --admin :15000                /healthz /readyz /config /metrics
  --local-api 127.0.0.1:15020   for the app: queues, leadership, locks
  --labels app=user-service     the pod's labels, matched against spec.selector
  --redis redis://host:6379     global limits and task queues; also redis+cluster://h1:6379,h2:6379
                                (Redis Cluster seeds) and redis+sentinel://s1:26379,s2:26379/<master>
                                (rediss… for TLS; docs/redis-topologies.md)
  --redis-sentinel-password P   the sentinels' own password, apart from the URL (better as
                                SLUICE_REDIS_SENTINEL_PASSWORD from a Secret)
  --redis-timeout 100ms         a global-limit decision waits this long for Redis, then its
                                failureMode answers
  --lock-nodes redis://a,redis://b,redis://c   independent RedLock nodes (single servers, never a
                                cluster or replicas of one another)
  --id NAME                     identity in Redis and towards the operator (default hostname-pid)
  --pod-name NAME               operator mode: this pod's name (default: hostname; SLUICE_POD_NAME)
  --pod-namespace NS            operator mode: this pod's namespace (SLUICE_POD_NAMESPACE)
  --token-file PATH             operator mode: projected service-account token (default /var/run/secrets/sluice.dev/token/token)
  --max-body BYTES              request bodies over this are answered 413 (default 10 MiB)
  --headers-timeout 10s         slow request headers are answered 408
  --upstream-timeout 60s        the app's answer, when no breaker timeout applies (504)
  --shutdown-grace 20s          on SIGTERM, in-flight work gets this long to finish
  --log-level info              debug | info | warn | error | silent
  --grpc-max-concurrent-streams 1000   HTTP/2 streams per inbound gRPC connection
  --grpc-initial-window 65535   HTTP/2 initial flow-control window (bytes)
  --grpc-max-message 4194304    gRPC messages over this (either way) end the call with RESOURCE_EXHAUSTED
  --grpc-keepalive 30s          PING idle connections to the app this often; an unanswered one is replaced
  --websocket-ping-interval 30s ping a WebSocket client silent for this long (0: never)
  --websocket-ping-timeout 10s  close a pinged client that sends nothing back within this
  --websocket-drain-window 10s  on shutdown, close WebSocket clients (1012) one by one over this much
                                of --shutdown-grace (at most 3/4 of it; 0: all at once)
  --websocket-quota-lease 30s   a Global maxConnectionsPerKey slot outlives a sidecar that died by this
  --path-escaped-slashes reject %2F, %5C or \\ in a path: reject (400, default), unescape (to /), keep
  --trusted-proxies CIDR,...    peers whose X-Forwarded-For is believed (e.g. the ingress: 10.0.0.0/8);
                                default: nobody, so client-sent X-Forwarded-* are replaced
  --grpc-max-connection-age 5m  GOAWAY inbound gRPC connections after about this long (±10 %), so clients
                                re-resolve and spread over new pods (default: off)
  --grpc-max-connection-age-grace 30s   calls still open then may finish for this long
Every flag can also be set as an environment variable SLUICE_<FLAG>, e.g. SLUICE_APP_HTTP.`;

export { UsageError };

/** Parses argv (and SLUICE_* env vars, which flags override) into SidecarOptions; throws UsageError. */
export function parseCliOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): SidecarOptions | 'help' {
  const flags = readFlags(argv, env, FLAGS, 'SLUICE_');
  if (flags.help) return 'help';
  const { get, duration, count } = flags;
  const maxBody = Number(get('max-body'));
  if (!Number.isInteger(maxBody) || maxBody < 0) throw new UsageError(`--max-body: "${get('max-body')}" is not a byte count`);
  const logLevel = flags.logLevel('log-level');
  const config = get('config');
  const operator = get('operator');
  if (!config && !operator) throw new UsageError('either --config (standalone) or --operator is required');
  if (config && operator) throw new UsageError('--config and --operator are exclusive');
  let labels: Record<string, string> | undefined;
  try {
    const text = get('labels');
    labels = text ? parseLabels(text) : undefined;
  } catch (err) {
    throw new UsageError(`--labels: ${(err as Error).message}`);
  }
  const operatorCa = readOperatorCa(get('operator-ca'));
  const operatorServerName = get('operator-server-name');
  if ((operatorCa || operatorServerName) && !operator) throw new UsageError('--operator-ca and --operator-server-name need --operator');
  if (operatorServerName && !operatorCa) throw new UsageError('--operator-server-name needs --operator-ca');
  // Durations where 0 means "off" (ping) or "at once" (drain).
  const durationOrZero = (flag: 'websocket-ping-interval' | 'websocket-drain-window') => (get(flag) === '0' ? 0 : duration(flag));
  const escaped = get('path-escaped-slashes') as EscapedSlashAction;
  if (!ESCAPED_SLASH_ACTIONS.includes(escaped)) throw new UsageError(`--path-escaped-slashes: "${escaped}" is not one of ${ESCAPED_SLASH_ACTIONS.join(', ')}`);
  const trustedProxies = get('trusted-proxies')?.split(',').map((s) => s.trim()).filter(Boolean) ?? [];
  try {
    new TrustedProxies(trustedProxies);
  } catch (err) {
    throw new UsageError(`--trusted-proxies: ${(err as Error).message}`);
  }
  const lockNodes = get('lock-nodes')?.split(',').map((s) => s.trim()).filter(Boolean);
  checkRedisUrl(get('redis'));
  const redis = withSentinelPassword(get('redis'), get('redis-sentinel-password'));
  checkLockNodeUrls(lockNodes);
  return {
    config,
    operator,
    ...(operatorCa ? { operatorCa } : {}),
    ...(operatorServerName ? { operatorServerName } : {}),
    appHttp: get('app-http'),
    appGrpc: get('app-grpc'),
    listenHttp: get('listen-http') as string,
    listenGrpc: get('listen-grpc') as string,
    admin: get('admin') as string,
    localApi: get('local-api') as string,
    labels,
    redis,
    redisTimeoutMs: duration('redis-timeout'),
    lockNodes,
    id: get('id') ?? `${hostname()}-${process.pid}`,
    podName: get('pod-name'),
    podNamespace: get('pod-namespace'),
    tokenFile: get('token-file'),
    maxBodyBytes: maxBody,
    headersTimeoutMs: duration('headers-timeout'),
    upstreamTimeoutMs: duration('upstream-timeout'),
    shutdownGraceMs: duration('shutdown-grace'),
    logLevel,
    grpcMaxConcurrentStreams: count('grpc-max-concurrent-streams', 1, 2 ** 31 - 1),
    grpcInitialWindowSize: count('grpc-initial-window', 1, 2 ** 31 - 1),
    grpcMaxMessageBytes: count('grpc-max-message', 0, 2 ** 31 - 1),
    grpcKeepaliveMs: duration('grpc-keepalive'),
    websocketPingIntervalMs: durationOrZero('websocket-ping-interval'),
    websocketPingTimeoutMs: duration('websocket-ping-timeout'),
    websocketDrainWindowMs: durationOrZero('websocket-drain-window'),
    websocketQuotaLeaseMs: duration('websocket-quota-lease'),
    pathEscapedSlashes: escaped,
    trustedProxies,
    ...(get('grpc-max-connection-age') ? { grpcMaxConnectionAgeMs: duration('grpc-max-connection-age') } : {}),
    grpcMaxConnectionAgeGraceMs: duration('grpc-max-connection-age-grace'),
  };
}

/** `--operator-ca`: a PEM file, or the PEM itself (the injector sets it inline). */
function readOperatorCa(value: string | undefined): string | undefined {
  if (!value) return undefined;
  let pem = value;
  if (!value.includes('-----BEGIN')) {
    try {
      pem = readFileSync(value, 'utf8');
    } catch (err) {
      throw new UsageError(`--operator-ca: cannot read ${value}: ${(err as Error).message}`);
    }
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError('--operator-ca: no PEM certificate found');
  return pem;
}
