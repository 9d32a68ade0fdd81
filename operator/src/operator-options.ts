/**
 * `sluice-operator` command line. Every flag can also be set as SLUICE_OPERATOR_<FLAG>
 * (e.g. SLUICE_OPERATOR_KUBECONFIG); flags win.
 */
import { readTrimmed } from '../../lib/files.ts';
import { hostname } from 'node:os';
import type { Level } from '../../lib/log.ts';
import { checkLockNodeUrls, checkRedisUrl, readFlags, withSentinelPassword, UsageError } from '../../lib/cli-flags.ts';
import { DEFAULT_TOKEN_AUDIENCE } from './sidecar-auth.ts';

export interface OperatorOptions {
  /** Path of a kubeconfig; without it the operator uses its in-cluster service account. */
  kubeconfig?: string;
  /** host:port of the PolicyDiscovery gRPC server. */
  discovery: string;
  /**
   * Serve PolicyDiscovery in plaintext even when the operator has certificates (local runs,
   * tests). Off by default: with the injection webhook on, discovery is TLS-only.
   */
  discoveryInsecure?: boolean;
  /** The discovery Service's name (its DNS names go into the serving certificate's SANs). */
  discoveryService?: string;
  /** host:port of /healthz /readyz /metrics. */
  admin: string;
  /** This replica's name in the leader Lease (default: the hostname, which is the pod name). */
  id: string;
  leaseNamespace: string;
  leaseName: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** The audience sidecar tokens must carry (TokenReview spec.audiences). */
  tokenAudience: string;
  logLevel: Level | 'silent';
  /** Redis of the task queues (`--redis`); without it TaskQueues report Ready=False RedisNotConfigured. */
  redis?: string;
  /** How often a TaskQueue's status (length, lag...) and autoscaling are refreshed. */
  queueResyncMs?: number;
  /** The RedLock nodes (`--lock-nodes`), read only: leader claims are checked against their fencing counters. */
  lockNodes?: string[];
}

const FLAGS = {
  kubeconfig: { type: 'string' },
  discovery: { type: 'string', default: ':15010' },
  'discovery-insecure': { type: 'boolean' },
  'discovery-service': { type: 'string', default: 'sluice-discovery' },
  admin: { type: 'string', default: ':15011' },
  id: { type: 'string' },
  'lease-namespace': { type: 'string' },
  'lease-name': { type: 'string', default: 'sluice-operator' },
  'lease-duration': { type: 'string', default: '15s' },
  'renew-deadline': { type: 'string', default: '10s' },
  'retry-period': { type: 'string', default: '2s' },
  'token-audience': { type: 'string', default: DEFAULT_TOKEN_AUDIENCE },
  'log-level': { type: 'string', default: 'info' },
  redis: { type: 'string' },
  'redis-sentinel-password': { type: 'string' },
  'queue-resync': { type: 'string', default: '5s' },
  'lock-nodes': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const USAGE = `Usage: sluice-operator [options]
  --kubeconfig PATH          kubeconfig to use (default: in-cluster service account)
  --discovery :15010         PolicyDiscovery gRPC listener (sidecars connect here); TLS
                             whenever the operator manages certificates (injection on)
  --discovery-insecure       serve PolicyDiscovery in plaintext anyway (local/test use only:
                             sidecar tokens then cross the network in clear)
  --discovery-service NAME   discovery Service name, for the certificate's SANs
                             (NAME.<ns>.svc, NAME.<ns>.svc.cluster.local; default sluice-discovery)
  --admin :15011             /healthz /readyz /metrics
  --id NAME                  identity in the leader Lease (default: hostname)
  --lease-namespace NS       namespace of the leader Lease (default: the pod's namespace)
  --lease-name NAME          leader Lease name (default sluice-operator)
  --lease-duration 15s       a follower takes over after the lease is unrenewed this long
  --renew-deadline 10s       a leader that cannot renew this long steps down
  --retry-period 2s          how often the leader renews and followers check
  --token-audience AUD       audience of sidecar tokens (default ${DEFAULT_TOKEN_AUDIENCE})
  --log-level info           debug | info | warn | error | silent
  --redis redis://host:6379  Redis of the task queues (stream + group ensure, lag, autoscaling);
                             also redis+cluster://… and redis+sentinel://…/<master> (rediss… for TLS)
  --redis-sentinel-password P  the sentinels' own password, apart from the URL (from a Secret)
  --queue-resync 5s          how often TaskQueue status and autoscaling are refreshed
  --lock-nodes URL,URL,URL   the RedLock nodes, read to check leader claims against the fencing counter
Every flag can also be set as SLUICE_OPERATOR_<FLAG>, e.g. SLUICE_OPERATOR_KUBECONFIG.`;

const IN_CLUSTER_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export function parseOperatorOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): OperatorOptions | 'help' {
  const flags = readFlags(argv, env, FLAGS, 'SLUICE_OPERATOR_');
  if (flags.help) return 'help';
  const { get, duration } = flags;
  const logLevel = flags.logLevel('log-level');
  const opts: OperatorOptions = {
    kubeconfig: get('kubeconfig') ?? env.KUBECONFIG,
    discovery: get('discovery') as string,
    discoveryInsecure: argv.includes('--discovery-insecure') || ['true', '1'].includes((env.SLUICE_OPERATOR_DISCOVERY_INSECURE ?? '').toLowerCase()),
    discoveryService: get('discovery-service') as string,
    admin: get('admin') as string,
    id: get('id') ?? hostname(),
    leaseNamespace: get('lease-namespace') ?? env.POD_NAMESPACE ?? readTrimmed(IN_CLUSTER_NAMESPACE) ?? 'sluice-system',
    leaseName: get('lease-name') as string,
    leaseDurationMs: duration('lease-duration'),
    renewDeadlineMs: duration('renew-deadline'),
    retryPeriodMs: duration('retry-period'),
    tokenAudience: get('token-audience') as string,
    logLevel,
    redis: withSentinelPassword(get('redis') || undefined, get('redis-sentinel-password')),
    queueResyncMs: duration('queue-resync'),
    ...(get('lock-nodes') ? { lockNodes: (get('lock-nodes') as string).split(',').map((u) => u.trim()).filter(Boolean) } : {}),
  };
  checkRedisUrl(get('redis') || undefined);
  checkLockNodeUrls(opts.lockNodes);
  if (!(opts.retryPeriodMs < opts.renewDeadlineMs && opts.renewDeadlineMs < opts.leaseDurationMs)) {
    throw new UsageError('durations must satisfy --retry-period < --renew-deadline < --lease-duration');
  }
  return opts;
}
