import { parseRedisTopology, RedisUrlError } from './redis/redis-topology.ts';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseDuration } from './policy/duration.ts';
import type { Level } from './log.ts';

/** A command line that cannot be run as given; the binaries print it with their usage, exit 2. */
export class UsageError extends Error {
  readonly code = 'SLUICE_ERR_USAGE';
}

type Flags = NonNullable<ParseArgsConfig['options']>;

/**
 * Reads `argv` against `flags`, each flag also settable as `<envPrefix><FLAG>` (dashes become
 * underscores); a flag given on the command line wins over its variable. The readers throw
 * UsageError naming the flag, so both binaries word their refusals the same way.
 */
export function readFlags<F extends Flags>(argv: string[], env: NodeJS.ProcessEnv, flags: F, envPrefix: string) {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: argv, options: flags, strict: true, allowPositionals: false }).values as typeof values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const get = (flag: keyof F & string): string | undefined => {
    const fromEnv = env[`${envPrefix}${flag.toUpperCase().replaceAll('-', '_')}`];
    const given = argv.some((a) => a === `--${flag}` || a.startsWith(`--${flag}=`));
    if (!given && fromEnv !== undefined && fromEnv !== '') return fromEnv;
    const v = values[flag];
    return typeof v === 'string' ? v : undefined;
  };
  return {
    help: values.help === true,
    get,
    duration(flag: keyof F & string): number {
      const text = get(flag) as string;
      const ms = parseDuration(text);
      if (ms === undefined || ms <= 0) throw new UsageError(`--${flag}: "${text}" is not a duration (e.g. 500ms, 10s, 1m)`);
      return ms;
    },
    count(flag: keyof F & string, min: number, max: number): number {
      const n = Number(get(flag));
      if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${flag}: "${get(flag)}" must be a whole number from ${min} to ${max}`);
      return n;
    },
    logLevel(flag: keyof F & string): Level | 'silent' {
      const level = get(flag) as Level | 'silent';
      if (!['debug', 'info', 'warn', 'error', 'silent'].includes(level)) throw new UsageError(`--${flag}: "${level}" is not one of debug, info, warn, error, silent`);
      return level;
    },
  };
}

/** `--redis`: refused at start with the reason (never the password) instead of failing on first use. */
export function checkRedisUrl(url: string | undefined): void {
  if (url === undefined) return;
  try {
    parseRedisTopology(url);
  } catch (err) {
    if (err instanceof RedisUrlError) throw new UsageError(`--redis: ${err.message}`);
    throw err;
  }
}

/** `--lock-nodes`: RedLock needs independent single servers, so cluster and sentinel URLs are refused. */
export function checkLockNodeUrls(urls: readonly string[] | undefined): void {
  for (const url of urls ?? []) {
    let kind: string;
    try {
      kind = parseRedisTopology(url).kind;
    } catch (err) {
      if (err instanceof RedisUrlError) throw new UsageError(`--lock-nodes: ${err.message}`);
      throw err;
    }
    if (kind !== 'single') throw new UsageError(`--lock-nodes: each lock node is one independent server (redis:// or rediss://), not a ${kind}`);
  }
}

/**
 * `--redis-sentinel-password` (SLUICE_REDIS_SENTINEL_PASSWORD, from a Secret of its own): the
 * sentinels' password, given apart from the URL, joins it as its `sentinelPassword` parameter.
 */
export function withSentinelPassword(url: string | undefined, password: string | undefined): string | undefined {
  if (url === undefined || password === undefined || password === '') return url;
  checkRedisUrl(url);
  const t = parseRedisTopology(url);
  if (t.kind !== 'sentinel') throw new UsageError('--redis-sentinel-password: only for a redis+sentinel:// URL');
  if (t.sentinelPassword !== undefined) throw new UsageError('--redis-sentinel-password: the URL already has a sentinelPassword');
  return `${url}${url.includes('?') ? '&' : '?'}sentinelPassword=${encodeURIComponent(password)}`;
}
