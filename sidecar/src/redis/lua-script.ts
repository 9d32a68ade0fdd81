import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/**
 * A Lua script run by its SHA (EVALSHA: only 40 bytes on the wire per call) that falls back to
 * EVAL when the server does not know it — after a restart or a SCRIPT FLUSH, the cache is empty.
 * Scripts are the unit of atomicity for everything Sluice keeps in Redis.
 *
 * Hot paths (a strict Global limit, a lock round) call `evalsha` directly — one command, one
 * promise, no async frame — after `loadOn` made sure every (re)connected server has the script;
 * they handle `isNoScript` errors on their failure path with `eval`. `run` does both for the rest.
 */
export class LuaScript {
  readonly source: string;
  readonly sha: string;
  readonly numberOfKeys: number;

  constructor(source: string, numberOfKeys: number) {
    this.source = source;
    this.numberOfKeys = numberOfKeys;
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    if (keys.length !== this.numberOfKeys) throw new RangeError(`script expects ${this.numberOfKeys} keys, got ${keys.length}`);
    try {
      return await client.evalsha(this.sha, this.numberOfKeys, ...keys, ...args);
    } catch (err) {
      if (!isNoScript(err)) throw err;
      return client.eval(this.source, this.numberOfKeys, ...keys, ...args);
    }
  }

  /** EVALSHA with the keys and args in one flat list (ioredis copies it: the caller may reuse it). */
  evalsha(client: Redis, keysAndArgs: readonly string[]): Promise<unknown> {
    return client.evalsha(this.sha, this.numberOfKeys, keysAndArgs as string[]);
  }

  /** EVAL of the source, for when `evalsha` failed with NOSCRIPT. */
  eval(client: Redis, keysAndArgs: readonly string[]): Promise<unknown> {
    return client.eval(this.source, this.numberOfKeys, keysAndArgs as string[]);
  }
}

export function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

/**
 * SCRIPT LOAD of `scripts` now (if connected) and on every reconnect, so that EVALSHA finds them:
 * a restarted server starts with an empty script cache. On a Redis Cluster every master needs its
 * own copy (SCRIPT LOAD is not routed by key), including a node that joins later (a promoted
 * replica). Best effort — a failed load only means the next call takes the NOSCRIPT → EVAL path once.
 */
export function loadScriptsOn(client: Redis, scripts: readonly LuaScript[]): void {
  const loadInto = (target: Redis) => {
    for (const s of scripts) target.script('LOAD', s.source).catch(() => {});
  };
  // Type-only ioredis here (this module loads even when no Redis is configured): a cluster client is
  // the one with nodes().
  const cluster = typeof (client as unknown as Partial<Cluster>).nodes === 'function' ? (client as unknown as Cluster) : undefined;
  const load = () => {
    for (const target of cluster ? cluster.nodes('master') : [client]) loadInto(target);
  };
  client.on('ready', load);
  cluster?.on('+node', (node: Redis) => loadInto(node));
  if (client.status === 'ready') load();
}
