import type { Redis } from 'ioredis';
import { isCluster } from './connection.ts';
import { LAYOUT_VERSION, LAYOUT_VERSION_KEY, legacyQueueKeys, queueKeys, type QueueIdentity } from './key-layout.ts';

/**
 * Moves one queue's data from key layout version 1 (raw user names, no namespace) into version 2
 * (key-layout.ts): pending entries, the consumer group, delayed tasks, dead letters, idempotency
 * records. The sidecar runs it before it produces to or consumes a queue, and again now and then
 * while it consumes (old-version producers may still be writing during a rolling upgrade); the
 * operator runs it before it creates the group or deletes the queue.
 *
 * Every step is one Lua script, atomic on the server, and idempotent: a task is moved by exactly
 * one step of one process, so any number of sidecars may start at once without a lock and nothing
 * is lost or copied twice. The first step RENAMEs the stream, which carries its consumer group,
 * pending entries, delivery counts and ids unchanged; later passes append what old producers added
 * since (only entries no consumer has read: what an old worker holds stays with it).
 *
 * These are the only scripts that name keys of two slots, by necessity: version 1 kept raw user
 * names, and its data only ever lived on a single Redis server (its dead-letter settle step
 * already spanned slots), so that is the only place they run.
 */

export class LayoutVersionError extends Error {
  readonly code = 'SLUICE_ERR_REDIS_LAYOUT';
}

export interface QueueMigrationReport {
  /** `renamed`: the old stream became the new one whole; `merged`: entries appended; `none`. */
  readonly stream: 'renamed' | 'merged' | 'none';
  readonly entries: number;
  readonly delayed: number;
  readonly deadLetters: number;
  readonly idempotencyRecords: number;
}

/** What a migration needs to know of a TaskQueue: its keys' identity, its group and its id. */
export interface MigratingQueue extends QueueIdentity {
  /** `namespace/name`: dead letters of version 1 carry it in their `queue` field. */
  readonly id: string;
  readonly group: string;
}

const BATCH = 500;

const NOTHING_MOVED: QueueMigrationReport = Object.freeze({ stream: 'none', entries: 0, delayed: 0, deadLetters: 0, idempotencyRecords: 0 });

/** KEYS: old stream, new stream. ARGV: group, batch. Returns {0 none | 1 renamed | 2 merged, entries moved, more}. */
const STREAM_STEP = `
local function info(key)
  local out = {}
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local r = {}
    for i = 1, #g, 2 do r[g[i]] = g[i + 1] end
    out[#out + 1] = r
  end
  return out
end
local function pending(key)
  local n = 0
  for _, g in ipairs(info(key)) do n = n + tonumber(g['pending']) end
  return n
end
-- Version 1 used the user's name as it was: a key of that name that is no stream is not ours.
if redis.call('TYPE', KEYS[1]).ok ~= 'stream' then return {0, 0, 0} end
-- A new stream that holds nothing yet (a group the operator or a consumer made) gives way.
if redis.call('EXISTS', KEYS[2]) == 1 and redis.call('XLEN', KEYS[2]) == 0 and pending(KEYS[2]) == 0 then
  redis.call('DEL', KEYS[2])
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('RENAME', KEYS[1], KEYS[2])
  return {1, 0, 0}
end
local start = '-'
for _, g in ipairs(info(KEYS[1])) do
  if g['name'] == ARGV[1] then start = '(' .. g['last-delivered-id'] end
end
local es = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', tonumber(ARGV[2]))
for _, e in ipairs(es) do
  redis.call('XADD', KEYS[2], '*', unpack(e[2]))
  redis.call('XDEL', KEYS[1], e[1])
end
local more = 0
if #es == tonumber(ARGV[2]) then more = 1
elseif pending(KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
return {2, #es, more}`;

/**
 * KEYS: old delayed zset, old delayed hash, old seq, new delayed zset, new delayed hash, new seq.
 * ARGV: batch. Returns {tasks moved (-1: renamed whole), more}.
 */
const DELAYED_STEP = `
local moved, more = 0, 0
if redis.call('EXISTS', KEYS[4]) == 0 and redis.call('EXISTS', KEYS[5]) == 0 then
  if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('RENAME', KEYS[1], KEYS[4]); moved = -1 end
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('RENAME', KEYS[2], KEYS[5]) end
else
  local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
  for i = 1, #ids, 2 do
    local id, due = ids[i], ids[i + 1]
    local packed = redis.call('HGET', KEYS[2], id)
    if packed then
      -- Ids are 'd<ms>-<seq>': two counters could meet in one millisecond.
      local nid = id
      while redis.call('HEXISTS', KEYS[5], nid) == 1 do nid = nid .. 'm' end
      redis.call('HSET', KEYS[5], nid, packed)
      redis.call('ZADD', KEYS[4], due, nid)
      moved = moved + 1
    end
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
  end
  if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) else more = 1 end
end
local old = tonumber(redis.call('GET', KEYS[3]))
if old then
  if (tonumber(redis.call('GET', KEYS[6])) or 0) < old then redis.call('SET', KEYS[6], old) end
  redis.call('DEL', KEYS[3])
end
return {moved, more}`;

/**
 * Version 1 let several queues share one dead-letter stream; each entry names its queue. Moves this
 * queue's entries (and any that name none). KEYS: old, new. ARGV: queue id, batch, cursor ('-' or
 * '(<id>'). Returns {moved, next cursor or '' when done}.
 */
const DEAD_LETTER_STEP = `
if redis.call('TYPE', KEYS[1]).ok ~= 'stream' then return {0, ''} end
local es = redis.call('XRANGE', KEYS[1], ARGV[3], '+', 'COUNT', tonumber(ARGV[2]))
local moved, last = 0, ''
for _, e in ipairs(es) do
  local q = nil
  for i = 1, #e[2], 2 do if e[2][i] == 'queue' then q = e[2][i + 1] end end
  if q == nil or q == ARGV[1] then
    redis.call('XADD', KEYS[2], '*', unpack(e[2]))
    redis.call('XDEL', KEYS[1], e[1])
    moved = moved + 1
  end
  last = e[1]
end
if #es < tonumber(ARGV[2]) then
  if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('XLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
  return {moved, ''}
end
return {moved, '(' .. last}`;

/**
 * Idempotency records: one string per key (value = task id, PX = what is left of the window)
 * become a field of the queue's hash and a score in its expiry set. KEYS: new hash, new expiry set,
 * old record keys… ARGV: length of the old prefix in bytes. Returns records moved.
 */
const IDEMPOTENCY_STEP = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local moved = 0
for i = 3, #KEYS do
  local id = redis.call('GET', KEYS[i])
  local ttl = redis.call('PTTL', KEYS[i])
  if id and ttl > 0 then
    local key = string.sub(KEYS[i], tonumber(ARGV[1]) + 1)
    if redis.call('HEXISTS', KEYS[1], key) == 0 then
      redis.call('HSET', KEYS[1], key, id)
      redis.call('ZADD', KEYS[2], now + ttl, key)
      moved = moved + 1
    end
  end
  redis.call('DEL', KEYS[i])
end
return moved`;

/**
 * Refuses to work on data a newer Sluice has already moved to a later layout, and records that
 * the data is in this layout when nothing says otherwise.
 */
export async function checkLayoutVersion(client: Redis): Promise<void> {
  await client.set(LAYOUT_VERSION_KEY, String(LAYOUT_VERSION), 'NX');
  const found = Number(await client.get(LAYOUT_VERSION_KEY));
  if (found > LAYOUT_VERSION) {
    throw new LayoutVersionError(`Redis holds Sluice key layout ${found}; this version understands up to ${LAYOUT_VERSION}: upgrade it`);
  }
}

/** Moves whatever version-1 data the queue has into its version-2 keys; cheap when there is none. */
export async function migrateQueue(client: Redis, q: MigratingQueue): Promise<QueueMigrationReport> {
  // Version 1 could never run on a Redis Cluster (its scripts spanned slots): there is nothing to move.
  if (isCluster(client)) return NOTHING_MOVED;
  const to = queueKeys(q);
  const from = legacyQueueKeys(q);
  const migratedBefore = (await client.get(to.layout)) !== null;

  let stream: QueueMigrationReport['stream'] = 'none';
  let entries = 0;
  for (;;) {
    const [kind, n, more] = (await client.eval(STREAM_STEP, 2, from.stream, to.stream, q.group, BATCH)) as [number, number, number];
    if (kind === 1) stream = 'renamed';
    else if (kind === 2 && stream === 'none' && n > 0) stream = 'merged';
    entries += n;
    if (more === 0) break;
  }

  let delayed = 0;
  for (;;) {
    const [n, more] = (await client.eval(DELAYED_STEP, 6, from.delayed, from.delayedTasks, from.seq, to.delayed, to.delayedTasks, to.seq, BATCH)) as [number, number];
    delayed += n === -1 ? Number(await client.zcard(to.delayed)) : n;
    if (more === 0) break;
  }

  let deadLetters = 0;
  if (from.deadLetter !== undefined && to.deadLetter !== undefined) {
    let cursor = '-';
    do {
      const [n, next] = (await client.eval(DEAD_LETTER_STEP, 2, from.deadLetter, to.deadLetter, q.id, BATCH, cursor)) as [number, string];
      deadLetters += n;
      cursor = next;
    } while (cursor !== '');
  }

  // Idempotency records are found by SCAN, so only until the queue is marked migrated: after that
  // a version-1 producer still running has its records left to expire (they fall back to plain
  // at-least-once for its retries), instead of every pass scanning the keyspace.
  let idempotencyRecords = 0;
  if (!migratedBefore) {
    let cursor = '0';
    do {
      const [next, found] = await client.scan(cursor, 'MATCH', `${escapeGlob(from.idempotencyPrefix)}*`, 'COUNT', 1_000);
      cursor = next;
      for (let i = 0; i < found.length; i += BATCH) {
        const chunk = found.slice(i, i + BATCH);
        idempotencyRecords += Number(await client.eval(IDEMPOTENCY_STEP, 2 + chunk.length, to.idempotency, to.idempotencyExpiry, ...chunk, Buffer.byteLength(from.idempotencyPrefix)));
      }
    } while (cursor !== '0');
    await client.set(to.layout, String(LAYOUT_VERSION));
  }
  return { stream, entries, delayed, deadLetters, idempotencyRecords };
}

/** SCAN MATCH is a glob: stream names may contain glob characters. */
function escapeGlob(s: string): string {
  return s.replace(/[\\*?[\]]/g, (c) => `\\${c}`);
}
