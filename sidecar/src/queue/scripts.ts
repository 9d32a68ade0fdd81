import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * The queue's Lua scripts. Each is one atomic step whose parts must not be separated by a crash or
 * by another consumer: an idempotency check and its XADD, an ownership check and its XACK, moving
 * a due task from the delay set into the stream. Time is Redis's (`TIME`), so sidecars with skewed
 * clocks agree on when a delayed task is due.
 */
export interface Script {
  readonly name: string;
  readonly lua: string;
  readonly sha: string;
}

function script(name: string, lua: string): Script {
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex') };
}

const NOW = `local __t = redis.call('TIME'); local now = tonumber(__t[1]) * 1000 + math.floor(tonumber(__t[2]) / 1000)`;

/** Does `consumer` still hold entry `id`? (XPENDING filtered by consumer: O(log N).) */
const OWNED = `local function owned(stream, group, consumer, id)
  return #redis.call('XPENDING', stream, group, id, id, 1, consumer) == 1
end`;


/**
 * Ordering keys. At most one task of a key is in the stream at a time (delivered or waiting to be
 * read); the key's later tasks wait in line, outside the stream, and the next one is appended when
 * the one in the stream is acknowledged or dead-lettered. That single rule gives per-key order
 * across every consumer and pod, and costs tasks without a key nothing. A waiting task is one
 * member of the waiting sorted set: `<key>\0<20-digit sequence>` followed by its packed id and
 * fields, so a key's line is read, in order, by one ZRANGEBYLEX and taken by one ZREM.
 *   order_put: appends a task of key k — to the stream when k is free or already held by this same
 *     task (a retry coming back), else at the end of k's line. tid is nil for a new task.
 *   order_done: task tid of key k has left (acked or dead-lettered): the next in line goes in.
 */
const ORDER = `local function field_of(fields, name)
  for i = 1, #fields - 1, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end
local function order_put(stream, oa, ow, seq, k, tid, fields, now)
  local cur = redis.call('HGET', oa, k)
  if cur and cur ~= tid then
    local n = redis.call('INCR', seq)
    if not tid then
      tid = 'o' .. now .. '-' .. n
      fields[#fields + 1] = 'i'
      fields[#fields + 1] = tid
    end
    redis.call('ZADD', ow, 0, k .. string.char(0) .. string.format('%020d', n) .. cmsgpack.pack({tid, fields}))
    return tid
  end
  local id = redis.call('XADD', stream, '*', unpack(fields))
  if not tid then tid = id end
  redis.call('HSET', oa, k, tid)
  return tid
end
local function order_done(stream, oa, ow, k, tid)
  if redis.call('HGET', oa, k) ~= tid then return end
  local m = redis.call('ZRANGEBYLEX', ow, '[' .. k .. string.char(0), '(' .. k .. string.char(1), 'LIMIT', 0, 1)
  if m[1] then
    local rec = cmsgpack.unpack(string.sub(m[1], #k + 22))
    redis.call('ZREM', ow, m[1])
    redis.call('XADD', stream, '*', unpack(rec[2]))
    redis.call('HSET', oa, k, rec[1])
  else
    redis.call('HDEL', oa, k)
  end
end`;

/**
 * KEYS: stream, delayed zset, delayed hash, seq, idempotency hash, idempotency expiry zset, order
 * active, order waiting. ARGV: window ms, shape (one letter per task), then per task:
 * for 'p' only the payload (no key, no delay, JSON — the common case, one argument instead of
 * four); for 'f' idempotency key ('' = none), delay ms, content type ('' = json), payload; for 'o'
 * the same and then the ordering key. Returns id1, duplicate1, id2, duplicate2, …
 * A delayed task with an ordering key waits in the delay set first and takes its place in its
 * key's line when it becomes due.
 *
 * Idempotency records are fields of one hash (with their expiry in a sorted set) rather than one
 * key each, so a queue owns a fixed set of keys in one slot and is deleted by one DEL. Redis 7.0
 * has no per-field expiry: a call that uses a key first drops up to 100 expired records, so the
 * hash never grows faster than it is pruned, and a lookup ignores a record already past its time.
 */
export const ENQUEUE = script('enqueue', `${NOW}
${ORDER}
local out = {}
local shape = ARGV[2]
local a = 3
local pruned = false
for n = 1, #shape do
  local key, delay, ct, payload, okey
  local letter = string.byte(shape, n)
  if letter == 112 then
    key, delay, ct, payload, okey = '', 0, '', ARGV[a], ''
    a = a + 1
  elseif letter == 111 then
    key, delay, ct, payload, okey = ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
    a = a + 5
  else
    key, delay, ct, payload, okey = ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2], ARGV[a + 3], ''
    a = a + 4
  end
  local existing = false
  if key ~= '' then
    if not pruned then
      pruned = true
      local old = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now, 'LIMIT', 0, 100)
      if #old > 0 then
        redis.call('HDEL', KEYS[5], unpack(old))
        redis.call('ZREM', KEYS[6], unpack(old))
      end
    end
    local expires = redis.call('ZSCORE', KEYS[6], key)
    if expires and tonumber(expires) > now then existing = redis.call('HGET', KEYS[5], key) end
  end
  if existing then
    out[#out + 1] = existing
    out[#out + 1] = 1
  else
    local id
    if delay > 0 then
      id = 'd' .. now .. '-' .. redis.call('INCR', KEYS[4])
      local fields = {'p', payload, 'i', id}
      if ct ~= '' then fields[#fields + 1] = 'c'; fields[#fields + 1] = ct end
      if okey ~= '' then fields[#fields + 1] = 'k'; fields[#fields + 1] = okey end
      redis.call('HSET', KEYS[3], id, cmsgpack.pack(fields))
      redis.call('ZADD', KEYS[2], now + delay, id)
    elseif okey ~= '' then
      local fields = {'p', payload, 'k', okey}
      if ct ~= '' then fields[5] = 'c'; fields[6] = ct end
      id = order_put(KEYS[1], KEYS[7], KEYS[8], KEYS[4], okey, nil, fields, now)
    elseif ct ~= '' then
      id = redis.call('XADD', KEYS[1], '*', 'p', payload, 'c', ct)
    else
      id = redis.call('XADD', KEYS[1], '*', 'p', payload)
    end
    if key ~= '' then
      redis.call('HSET', KEYS[5], key, id)
      redis.call('ZADD', KEYS[6], now + tonumber(ARGV[1]), key)
    end
    out[#out + 1] = id
    out[#out + 1] = 0
  end
end
return out`);

/**
 * Moves due tasks from the delay set into the stream — a task with an ordering key through its
 * key's line (a retry of the key's active task goes straight back in). KEYS: stream, delayed
 * zset, delayed hash, seq, order active, order waiting. ARGV: limit. Returns
 * {moved, ms until the next one is due or -1}.
 */
export const PROMOTE = script('promote', `${NOW}
${ORDER}
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(ids) do
  local packed = redis.call('HGET', KEYS[3], id)
  if packed then
    local fields = cmsgpack.unpack(packed)
    local k = field_of(fields, 'k')
    if k then order_put(KEYS[1], KEYS[5], KEYS[6], KEYS[4], k, field_of(fields, 'i'), fields, now)
    else redis.call('XADD', KEYS[1], '*', unpack(fields)) end
  end
  redis.call('HDEL', KEYS[3], id)
  redis.call('ZREM', KEYS[2], id)
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local wait = -1
if nxt[2] then
  wait = tonumber(nxt[2]) - now
  if wait < 0 then wait = 0 end
end
return {#ids, wait}`);

/**
 * Settles delivered entries, each only if this consumer still owns it: a late result from a
 * worker whose claim was taken must not ack (or retry) the entry another worker now holds.
 * KEYS: stream, delayed zset, delayed hash, dead-letter stream, order active, order waiting.
 * ARGV: group, consumer, ops (one letter per entry, so that a plain ack costs one
 * argument), then per entry:
 *   A: entryId                                  ack
 *   R: entryId taskId delayMs nfields fields…   retry later (delay set), then ack
 *   L: entryId nfields fields…                  release: append again now (same attempt), then ack
 *   D: entryId nfields fields…                  dead-letter, then ack
 *   a: entryId orderingKey taskId               ack, and let the key's next task in
 *   d: entryId orderingKey taskId nfields fields…  dead-letter, and let the key's next task in
 * A retry or a release keeps its key: the task stays at the head of its line (head-of-line).
 * Returns one 1 (settled) / 0 (not ours any more) per op.
 */
export const SETTLE = script('settle', `${NOW}
${OWNED}
${ORDER}
local stream, group, me, ops = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local out = {}
local a = 4
for n = 1, #ops do
  local op, id = string.sub(ops, n, n), ARGV[a]
  a = a + 1
  local taskId, delay, fields, okey
  if op == 'R' then
    taskId, delay = ARGV[a], tonumber(ARGV[a + 1])
    a = a + 2
  elseif op == 'a' or op == 'd' then
    okey, taskId = ARGV[a], ARGV[a + 1]
    a = a + 2
  end
  if op ~= 'A' and op ~= 'a' then
    local nf = tonumber(ARGV[a])
    fields = {}
    for i = 1, nf do fields[i] = ARGV[a + i] end
    a = a + 1 + nf
  end
  if owned(stream, group, me, id) then
    if op == 'R' then
      if delay > 0 then
        redis.call('HSET', KEYS[3], taskId, cmsgpack.pack(fields))
        redis.call('ZADD', KEYS[2], now + delay, taskId)
      else
        redis.call('XADD', stream, '*', unpack(fields))
      end
    elseif op == 'L' then
      redis.call('XADD', stream, '*', unpack(fields))
    elseif op == 'D' or op == 'd' then
      redis.call('XADD', KEYS[4], '*', unpack(fields))
    end
    redis.call('XACK', stream, group, id)
    if okey then order_done(stream, KEYS[5], KEYS[6], okey, taskId) end
    out[n] = 1
  else
    out[n] = 0
  end
end
return out`);

/**
 * Keeps claims fresh for entries still being worked on: XCLAIM … JUSTID resets the idle time
 * without counting a delivery. Only entries this consumer still owns are touched, so a refresh
 * never steals back an entry that was reclaimed. KEYS: stream. ARGV: group, consumer, ids…
 * Returns 1 (still ours) / 0 (lost) per id.
 */
export const REFRESH = script('refresh', `${OWNED}
local out = {}
for i = 3, #ARGV do
  if owned(KEYS[1], ARGV[1], ARGV[2], ARGV[i]) then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out`);

/**
 * Takes over entries idle longer than the visibility timeout (their consumer died) and reports
 * each one's delivery count, from which the attempt number follows. KEYS: stream. ARGV: group,
 * consumer, min idle ms, cursor, count. Returns {next cursor, entries, counts, deleted}.
 */
export const RECLAIM = script('reclaim', `
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local entries, counts = {}, {}
for _, e in ipairs(r[2]) do
  if e then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
    entries[#entries + 1] = e
    counts[#counts + 1] = (p[1] and p[1][4]) or 1
  end
end
local deleted = 0
if r[3] then deleted = #r[3] end
return {r[1], entries, counts, deleted}`);

/**
 * At start-up, takes back entries still pending under this consumer's own name: a previous
 * incarnation (same pod, restarted container) died holding them. XCLAIM counts a delivery, so the
 * attempt number rises as it should. KEYS: stream. ARGV: group, consumer, count.
 * Returns {entries, counts}.
 */
export const RECLAIM_OWN = script('reclaim-own', `
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', tonumber(ARGV[3]), ARGV[2])
local entries, counts = {}, {}
for _, row in ipairs(p) do
  local e = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, row[1])
  if e[1] then
    entries[#entries + 1] = e[1]
    counts[#counts + 1] = row[4] + 1
  else
    redis.call('XACK', KEYS[1], ARGV[1], row[1])
  end
end
return {entries, counts}`);

/**
 * One paced step of a running redrive, by the sidecar holding (or taking over) its lease. KEYS:
 * stream, dead-letter stream, redrive hash, seq, order active, order waiting. A dead
 * letter with an ordering key goes to the end of its key's line. ARGV: owner, lease ms, most to move, most to look at,
 * wall-clock ISO time. Each matching dead letter is appended to the stream as a fresh task (same
 * task id, attempt 1, the dead letter's error as the last error) and deleted from the dead-letter
 * stream, and the cursor passes it, all in this one call: a crash between steps can neither lose
 * one nor move one twice, and a repeated redrive finds only what was not moved.
 * Returns {state, moved this step, owner when busy, perSecond}; state is running, done, busy or idle.
 */
export const REDRIVE_STEP = script('redrive-step', `${NOW}
${ORDER}
local r = redis.call('HMGET', KEYS[3], 'state', 'owner', 'lease', 'cursor', 'end', 'moved', 'skipped', 'max', 'error', 'cause', 'perSecond')
if r[1] ~= 'running' then return {r[1] or 'idle', 0, '', 0} end
if r[2] ~= '' and r[2] ~= ARGV[1] and tonumber(r[3]) > now then return {'busy', 0, r[2], tonumber(r[11])} end
local cursor, finish, moved, skipped, max = r[4], r[5], tonumber(r[6]), tonumber(r[7]), tonumber(r[8])
local errp, cause = r[9], r[10]
local want = tonumber(ARGV[3])
if max > 0 and max - moved < want then want = max - moved end
local step = 0
local range = {}
if want > 0 then range = redis.call('XRANGE', KEYS[2], '(' .. cursor, finish, 'COUNT', tonumber(ARGV[4])) end
local looked = 0
for _, e in ipairs(range) do
  if step >= want then break end
  looked = looked + 1
  local f = e[2]
  local v = {}
  for i = 1, #f, 2 do v[f[i]] = f[i + 1] end
  local ok = (errp == '' or string.sub(v['error'] or '', 1, #errp) == errp) and (cause == '' or v['cause'] == cause)
  if ok then
    local fields = {'p', v['p'] or '', 'i', v['originalId'] or v['i'] or e[1]}
    if v['c'] then fields[#fields + 1] = 'c'; fields[#fields + 1] = v['c'] end
    if v['error'] then fields[#fields + 1] = 'e'; fields[#fields + 1] = v['error'] end
    if v['k'] then
      fields[#fields + 1] = 'k'
      fields[#fields + 1] = v['k']
      order_put(KEYS[1], KEYS[5], KEYS[6], KEYS[4], v['k'], fields[4], fields, now)
    else
      redis.call('XADD', KEYS[1], '*', unpack(fields))
    end
    redis.call('XDEL', KEYS[2], e[1])
    step = step + 1
  else
    skipped = skipped + 1
  end
  cursor = e[1]
end
moved = moved + step
local state = 'running'
local exhausted = looked == #range and #range < tonumber(ARGV[4])
if want <= 0 or (max > 0 and moved >= max) or exhausted or cursor == finish then state = 'done' end
redis.call('HSET', KEYS[3], 'state', state, 'cursor', cursor, 'moved', moved, 'skipped', skipped, 'owner', ARGV[1], 'lease', now + tonumber(ARGV[2]))
if state == 'done' then redis.call('HSET', KEYS[3], 'finishedAt', ARGV[5], 'owner', '') end
return {state, step, '', tonumber(r[11])}`);

/**
 * Dead-letter retention: drops the oldest dead letters beyond maxLen and those dead-lettered more
 * than maxAge ago (entry ids are the Redis time they were appended), at most ARGV[3] per call so a
 * first pass over a huge backlog never blocks Redis for long. KEYS: dead-letter stream. ARGV:
 * maxLen (0 = none), maxAge ms (0 = none), limit. Returns the number removed.
 */
export const DEAD_LETTER_TRIM = script('dead-letter-trim', `${NOW}
local limit = tonumber(ARGV[3])
local removed = 0
local maxLen, maxAge = tonumber(ARGV[1]), tonumber(ARGV[2])
if maxAge > 0 then
  local cut = (now - maxAge) .. '-0'
  local old = redis.call('XRANGE', KEYS[1], '-', '(' .. cut, 'COUNT', limit + 1)
  if #old > limit then cut = old[limit + 1][1] end
  if #old > 0 then removed = removed + redis.call('XTRIM', KEYS[1], 'MINID', cut) end
end
if maxLen > 0 then
  local len = redis.call('XLEN', KEYS[1])
  if len > maxLen then
    local keep = maxLen
    if len - maxLen > limit then keep = len - limit end
    removed = removed + redis.call('XTRIM', KEYS[1], 'MAXLEN', '=', keep)
  end
end
return removed`);

type Arg = string | Buffer | number;

/**
 * EVALSHA, falling back to EVAL once when the server does not know the script (first use, or a
 * restarted Redis). `buffers` returns bulk strings as Buffers, for payload bytes.
 */
export async function runScript(client: Redis, s: Script, keys: readonly string[], args: readonly Arg[], buffers = false): Promise<unknown> {
  const call = (cmd: string, first: string) =>
    buffers ? client.callBuffer(cmd, first, keys.length, ...keys, ...args) : client.call(cmd, first, keys.length, ...keys, ...args);
  try {
    return await call('EVALSHA', s.sha);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return call('EVAL', s.lua);
  }
}
