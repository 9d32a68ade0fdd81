/**
 * What the injector puts into pods, from the chart's values (rendered into a JSON file the
 * operator reads at start). Validated and frozen once; the patcher only reads it. A bad value
 * stops the operator at start with a message naming the value, rather than producing broken pods.
 */
import { parseRedisTopology, redisUrlHasPassword, RedisUrlError } from '../../../lib/redis/redis-topology.ts';
import { DEFAULT_TOKEN_AUDIENCE } from '../sidecar-auth.ts';
import { QuantityError, validateQuantity, type ResourceName } from './quantity.ts';

export interface ResourceValues {
  requests?: { cpu?: string; memory?: string };
  limits?: { cpu?: string; memory?: string };
}

/** The JSON shape the chart renders (`injection.json`); every field but `image` and `operatorAddress` is optional. */
export interface InjectionValues {
  image: string;
  imagePullPolicy?: string;
  /** host:port of the discovery Service, e.g. sluice-discovery.sluice-system.svc:15010. */
  operatorAddress: string;
  resources?: ResourceValues;
  /**
   * The sidecar's CPU limit in namespaces that require one (a ResourceQuota on limits.cpu, a
   * LimitRange max or ratio), lowered to the LimitRange max; "" turns that off. Default "1".
   */
  cpuLimitWhenRequired?: string;
  /** Plain URL (no password), or a Secret that must exist in each injected namespace. */
  redis?: { url?: string; urlSecret?: { name: string; key: string }; sentinelPasswordSecret?: { name: string; key: string } };
  lockNodes?: string[];
  /** A Secret (in each injected namespace) whose key holds the lock node URLs, comma-separated, with their passwords. */
  lockNodesSecret?: { name: string; key: string };
  tokenAudience?: string;
  tokenExpirationSeconds?: number;
  logLevel?: string;
}

export interface InjectionConfig {
  readonly image: string;
  readonly imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  readonly operatorAddress: string;
  readonly resources: { requests: Partial<Record<ResourceName, string>>; limits: Partial<Record<ResourceName, string>> };
  readonly cpuLimitWhenRequired: string | undefined;
  readonly redisUrl: string | undefined;
  readonly redisUrlSecret: { name: string; key: string } | undefined;
  /** The sentinels' own password, from a Secret of its own (Sentinel URLs only). */
  readonly redisSentinelPasswordSecret: { name: string; key: string } | undefined;
  readonly lockNodes: readonly string[];
  readonly lockNodesSecret: { name: string; key: string } | undefined;
  readonly tokenAudience: string;
  readonly tokenExpirationSeconds: number;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
}

export class InjectionConfigError extends Error {
  readonly code = 'SLUICE_ERR_INJECTION_CONFIG';
}

export const DEFAULT_RESOURCES: ResourceValues = {
  requests: { cpu: '50m', memory: '64Mi' },
  // No CPU limit by default: CFS throttling adds latency to every proxied request.
  limits: { memory: '256Mi' },
};

/** Enough for a proxy under load; CPU limits are set only where the namespace requires one. */
export const DEFAULT_CPU_LIMIT_WHEN_REQUIRED = '1';

// Printable, no whitespace or quotes: these go into env values and image references verbatim.
const SAFE = /^[\x21-\x7e]+$/;
const IMAGE = /^[a-z0-9]+(?:[._\-/:@][a-zA-Z0-9_.\-]+)*$/;
const HOST_PORT = /^[a-zA-Z0-9.\-]+:\d{1,5}$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]{1,253}$/;

export function compileInjectionConfig(v: InjectionValues): InjectionConfig {
  const fail = (msg: string): never => {
    throw new InjectionConfigError(`injection config: ${msg}`);
  };
  if (typeof v?.image !== 'string' || !IMAGE.test(v.image)) fail(`image ${JSON.stringify(v?.image)} is not an image reference`);
  const pull = v.imagePullPolicy ?? 'IfNotPresent';
  if (!['Always', 'IfNotPresent', 'Never'].includes(pull)) fail(`imagePullPolicy ${JSON.stringify(pull)} must be Always, IfNotPresent or Never`);
  if (typeof v.operatorAddress !== 'string' || !HOST_PORT.test(v.operatorAddress)) fail(`operatorAddress ${JSON.stringify(v.operatorAddress)} must be host:port`);

  const resources = { requests: {} as Partial<Record<ResourceName, string>>, limits: {} as Partial<Record<ResourceName, string>> };
  const r = v.resources ?? DEFAULT_RESOURCES;
  for (const kind of ['requests', 'limits'] as const) {
    for (const res of ['cpu', 'memory'] as const) {
      const q = r[kind]?.[res];
      if (q === undefined || q === null || q === '') continue;
      try {
        resources[kind][res] = validateQuantity(res, String(q), `resources.${kind}.${res}`);
      } catch (err) {
        if (err instanceof QuantityError) fail(err.message);
        throw err;
      }
    }
  }

  let cpuLimitWhenRequired: string | undefined = v.cpuLimitWhenRequired ?? DEFAULT_CPU_LIMIT_WHEN_REQUIRED;
  if (cpuLimitWhenRequired === '' || cpuLimitWhenRequired === null) cpuLimitWhenRequired = undefined;
  else {
    try {
      cpuLimitWhenRequired = validateQuantity('cpu', String(cpuLimitWhenRequired), 'cpuLimitWhenRequired');
    } catch (err) {
      if (err instanceof QuantityError) fail(err.message);
      throw err;
    }
  }

  const redisUrl = v.redis?.url || undefined;
  if (redisUrl !== undefined) {
    if (!SAFE.test(redisUrl)) fail('redis.url must be printable text without spaces');
    try {
      // Pod specs are readable by anyone who can list pods: a password (the data nodes' or the
      // sentinels') belongs in urlSecret.
      if (redisUrlHasPassword(redisUrl)) fail('redis.url must not carry a password; use redis.urlSecret');
    } catch (err) {
      if (err instanceof RedisUrlError) fail(`redis.url: ${err.message}`);
      throw err;
    }
  }
  const secret = v.redis?.urlSecret;
  if (secret && (!DNS_LABEL.test(String(secret.name)) || !SECRET_KEY.test(String(secret.key)))) fail('redis.urlSecret needs a valid name and key');
  if (redisUrl && secret) fail('set redis.url or redis.urlSecret, not both');
  const sentinelSecret = v.redis?.sentinelPasswordSecret;
  if (sentinelSecret && (!DNS_LABEL.test(String(sentinelSecret.name)) || !SECRET_KEY.test(String(sentinelSecret.key)))) fail('redis.sentinelPasswordSecret needs a valid name and key');
  if (sentinelSecret && redisUrl && parseRedisTopology(redisUrl).kind !== 'sentinel') fail('redis.sentinelPasswordSecret only applies to a redis+sentinel:// URL');

  const lockNodes = v.lockNodes ?? [];
  for (const n of lockNodes) {
    if (typeof n !== 'string' || !SAFE.test(n) || !/^rediss?:\/\//.test(n) || n.includes(',')) fail(`lock node ${JSON.stringify(n)} must be a redis:// URL`);
    if (/^rediss?:\/\/[^/@]*:[^/@]*@/.test(n)) fail('lockNodes must not carry passwords; use lockNodesSecret');
  }
  const lockSecret = v.lockNodesSecret;
  if (lockSecret && (!DNS_LABEL.test(String(lockSecret.name)) || !SECRET_KEY.test(String(lockSecret.key)))) fail('lockNodesSecret needs a valid name and key');
  if (lockNodes.length > 0 && lockSecret) fail('set lockNodes or lockNodesSecret, not both');

  const tokenAudience = v.tokenAudience ?? DEFAULT_TOKEN_AUDIENCE;
  if (!SAFE.test(tokenAudience)) fail('tokenAudience must be printable text without spaces');
  const tokenExpirationSeconds = v.tokenExpirationSeconds ?? 3600;
  // The API server's bounds for projected tokens: at least 10 minutes; 48h is plenty.
  if (!Number.isInteger(tokenExpirationSeconds) || tokenExpirationSeconds < 600 || tokenExpirationSeconds > 172_800) fail('tokenExpirationSeconds must be an integer in [600, 172800]');
  const logLevel = (v.logLevel ?? 'info') as InjectionConfig['logLevel'];
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(logLevel)) fail(`logLevel ${JSON.stringify(logLevel)} is not one of debug, info, warn, error, silent`);

  return Object.freeze({
    image: v.image,
    imagePullPolicy: pull as InjectionConfig['imagePullPolicy'],
    operatorAddress: v.operatorAddress,
    resources: Object.freeze(resources),
    cpuLimitWhenRequired,
    redisUrl,
    redisUrlSecret: secret ? { name: secret.name, key: secret.key } : undefined,
    redisSentinelPasswordSecret: sentinelSecret ? { name: sentinelSecret.name, key: sentinelSecret.key } : undefined,
    lockNodes: Object.freeze([...lockNodes]),
    lockNodesSecret: lockSecret ? { name: lockSecret.name, key: lockSecret.key } : undefined,
    tokenAudience,
    tokenExpirationSeconds,
    logLevel,
  });
}
