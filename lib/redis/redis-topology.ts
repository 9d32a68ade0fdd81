/**
 * What a `--redis` value names: one server, a Redis Cluster (seed nodes) or a Sentinel-managed
 * primary. Pure parsing, no I/O, so the sidecar, the operator and the injector's validation agree
 * on what is accepted.
 *
 *   redis://[user:pass@]host:6379[/db]                      one server (rediss:// for TLS)
 *   redis+cluster://[user:pass@]host:6379,host:6379          Redis Cluster, any reachable seed nodes
 *   redis+sentinel://[user:pass@]s1:26379,s2:26379/<master>[?db=N&sentinelUsername=U&sentinelPassword=P]
 *
 * The user and password before `@` are the data nodes' (for Sentinel: the primary's and its
 * replicas'). Sentinels often have credentials of their own; they go in the `sentinelUsername` and
 * `sentinelPassword` query parameters, or separately through the connection options.
 */

export interface RedisNodeAddress {
  readonly host: string;
  readonly port: number;
}

interface Credentials {
  /** TLS to the data nodes (`rediss…`). */
  readonly tls: boolean;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
}

export type RedisTopology =
  | ({ readonly kind: 'single'; readonly url: string } & Credentials)
  | ({ readonly kind: 'cluster'; readonly nodes: readonly RedisNodeAddress[] } & Credentials)
  | ({
      readonly kind: 'sentinel';
      readonly sentinels: readonly RedisNodeAddress[];
      /** The name the sentinels monitor the primary under. */
      readonly masterName: string;
      readonly db: number;
      readonly sentinelUsername?: string | undefined;
      readonly sentinelPassword?: string | undefined;
    } & Credentials);

export type RedisTopologyKind = RedisTopology['kind'];

/** A `--redis` value that cannot be used; the message never contains the password. */
export class RedisUrlError extends Error {
  readonly code = 'SLUICE_ERR_REDIS_URL';
}

const SCHEMES: Record<string, { kind: RedisTopologyKind; tls: boolean }> = {
  'redis:': { kind: 'single', tls: false },
  'rediss:': { kind: 'single', tls: true },
  'redis+cluster:': { kind: 'cluster', tls: false },
  'rediss+cluster:': { kind: 'cluster', tls: true },
  'redis+sentinel:': { kind: 'sentinel', tls: false },
  'rediss+sentinel:': { kind: 'sentinel', tls: true },
};

/** The schemes `--redis` accepts, for usage texts and validation messages. */
export const REDIS_SCHEMES = Object.keys(SCHEMES).map((s) => `${s}//`);

/** Seed or sentinel lists longer than this are a mistake (and bound what a bad value costs). */
const MAX_NODES = 64;

export function parseRedisTopology(value: string): RedisTopology {
  const m = /^([a-z+]+:)\/\/(?:([^@/?#]*)@)?([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/i.exec(value.trim());
  const scheme = m ? SCHEMES[(m[1] as string).toLowerCase()] : undefined;
  if (!m || !scheme) throw new RedisUrlError(`not a Redis URL; use one of ${REDIS_SCHEMES.join(', ')}`);
  const [, , userinfo, hostList = '', path = '', query = ''] = m;
  const creds = credentials(userinfo, scheme.tls);
  if (scheme.kind === 'single') {
    if (hostList.includes(',')) throw new RedisUrlError('a redis:// URL names one server; use redis+cluster:// or redis+sentinel:// for several');
    if (hostList === '') throw new RedisUrlError('the URL names no host');
    return { kind: 'single', url: value.trim(), ...creds };
  }
  const params = new URLSearchParams(query);
  const allowed = scheme.kind === 'sentinel' ? ['db', 'sentinelUsername', 'sentinelPassword'] : [];
  for (const k of params.keys()) {
    if (!allowed.includes(k)) throw new RedisUrlError(`unknown parameter "${k}"${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`);
  }
  const defaultPort = scheme.kind === 'sentinel' ? 26379 : 6379;
  const nodes = hostList.split(',').map((h) => h.trim()).filter(Boolean).map((h) => address(h, defaultPort));
  if (nodes.length === 0) throw new RedisUrlError(`the URL names no ${scheme.kind === 'cluster' ? 'seed node' : 'sentinel'}`);
  if (nodes.length > MAX_NODES) throw new RedisUrlError(`at most ${MAX_NODES} nodes`);
  if (scheme.kind === 'cluster') {
    if (path !== '' && path !== '/') throw new RedisUrlError('a cluster URL takes no path (Redis Cluster has only database 0)');
    return { kind: 'cluster', nodes, ...creds };
  }
  const masterName = decode(path.replace(/^\//, '').replace(/\/$/, ''));
  if (masterName === '' || masterName.includes('/')) throw new RedisUrlError('a sentinel URL ends with the master name: redis+sentinel://host:26379,host:26379/<master-name>');
  const dbText = params.get('db') ?? '0';
  if (!/^\d{1,5}$/.test(dbText)) throw new RedisUrlError('db must be a database number');
  return {
    kind: 'sentinel', sentinels: nodes, masterName, db: Number(dbText), ...creds,
    sentinelUsername: params.get('sentinelUsername') ?? undefined,
    sentinelPassword: params.get('sentinelPassword') ?? undefined,
  };
}

/** True when the value carries a password anywhere (data nodes' or sentinels'). */
export function redisUrlHasPassword(value: string): boolean {
  const t = parseRedisTopology(value);
  return t.password !== undefined || (t.kind === 'sentinel' && t.sentinelPassword !== undefined);
}

function credentials(userinfo: string | undefined, tls: boolean): Credentials {
  if (userinfo === undefined) return { tls };
  const at = userinfo.indexOf(':');
  const username = decode(at < 0 ? userinfo : userinfo.slice(0, at));
  const password = at < 0 ? undefined : decode(userinfo.slice(at + 1));
  return { tls, username: username === '' ? undefined : username, password: password === '' ? undefined : password };
}

function address(text: string, defaultPort: number): RedisNodeAddress {
  // [::1]:6379, [::1], host:6379, host
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]\s]+))(?::(\d{1,5}))?$/i.exec(text);
  if (!m) throw new RedisUrlError(`"${text}" is not host:port`);
  const port = m[3] === undefined ? defaultPort : Number(m[3]);
  if (port < 1 || port > 65535) throw new RedisUrlError(`"${text}": port out of range`);
  return { host: (m[1] ?? m[2]) as string, port };
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new RedisUrlError('bad percent-encoding in the URL');
  }
}
