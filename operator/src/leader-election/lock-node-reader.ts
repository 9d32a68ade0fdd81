/**
 * Read access to the RedLock nodes, for one question: what is the highest fencing counter of an
 * election? Every token a sidecar was ever issued is at most that (each was written to a majority,
 * and any majority of answers meets it), so a leadership claim above it was made up. The operator
 * only reads (GET of the counter key named by lib/redis/key-layout.ts), with a short timeout per
 * node, and needs a majority of answers to say anything.
 */
import type { Redis } from 'ioredis';
import { electionResource, fenceKey } from '../../../lib/redis/key-layout.ts';
import { connectRedis, redactUrl } from '../../../lib/redis/connection.ts';
import type { Logger } from '../../../lib/log.ts';
import type { LockNodeView } from './plan-leadership.ts';

export class LockNodeReader {
  private readonly nodes: readonly Redis[];

  constructor(urls: readonly string[], logger: Logger, commandTimeoutMs = 500) {
    this.nodes = urls.map((url, i) => {
      logger.info('lock node (read only)', { node: i, url: redactUrl(url) });
      return connectRedis({ url, name: `operator-lock-node-${i}`, commandTimeoutMs, connectTimeoutMs: commandTimeoutMs });
    });
  }

  async read(namespace: string, name: string): Promise<LockNodeView> {
    const key = fenceKey(electionResource(namespace, name));
    const answers = await Promise.all(this.nodes.map((n) => n.get(key).then((v) => Number(v ?? 0), () => undefined)));
    const got = answers.filter((a): a is number => a !== undefined && Number.isFinite(a));
    if (got.length < Math.floor(this.nodes.length / 2) + 1) return { state: 'unreachable' };
    return { state: 'ok', highestToken: Math.max(0, ...got) };
  }

  close(): void {
    for (const n of this.nodes) n.disconnect();
  }
}
