import { createHash } from 'node:crypto';

/** Partition keys longer than this are stored as their hash. */
export const MAX_PARTITION_KEY_CHARS = 128;

/**
 * A partition key of bounded size. Keys come from the client (a path, a header value), so a
 * client could otherwise make every stored partition as large as its request line — 20 000
 * requests with 12 KB paths held a quarter of a GiB. A long key is replaced by its SHA-256: the
 * same value still maps to the same partition, and distinct values practically never collide.
 * Short keys (addresses, user ids, ordinary paths) are kept as they are, readable in Redis.
 */
export function boundedPartitionKey(key: string): string {
  if (key.length <= MAX_PARTITION_KEY_CHARS) return key;
  return `sha256:${createHash('sha256').update(key).digest('base64url')}`;
}
