import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * A Lua script run by its SHA (EVALSHA: only 40 bytes on the wire per call) that falls back to
 * EVAL when the server does not know it — after a restart or a SCRIPT FLUSH, the cache is empty.
 * Scripts are the unit of atomicity for everything Sluice keeps in Redis.
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
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return client.eval(this.source, this.numberOfKeys, ...keys, ...args);
    }
  }
}
