import { LuaScript } from '../redis/lua-script.ts';

/*
 * The per-node steps of RedLock, each atomic on its node. KEYS[1] is the lock
 * (`sluice:lock:{resource}`), KEYS[2] the fencing counter (`sluice:fence:{resource}`); the lock's
 * value is unique per acquisition (holder id + random nonce), so a holder can only ever extend or
 * delete its own lock — never one that expired and was taken by someone else meanwhile.
 */

/**
 * SET NX PX, and — in the same atomic step, only if it won — raise the fencing counter to the
 * caller's proposed token ARGV[3] (see fencing-token.ts: this is what lets most acquisitions take
 * one round). Won → {1, the counter as it was before}; lost → {0, current value, its pttl, counter}.
 */
export const ACQUIRE = new LuaScript(
  `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local c = tonumber(redis.call('GET', KEYS[2])) or 0
  if c < tonumber(ARGV[3]) then redis.call('SET', KEYS[2], ARGV[3]) end
  return {1, c}
end
return {0, redis.call('GET', KEYS[1]) or '', redis.call('PTTL', KEYS[1]), tonumber(redis.call('GET', KEYS[2])) or 0}
`,
  2,
);

/** Raises the counter to ARGV[2] if the lock is still ours: the second round, when a proposal was too low. */
export const FENCE = new LuaScript(
  `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
if cur < tonumber(ARGV[2]) then redis.call('SET', KEYS[2], ARGV[2]) end
return 1
`,
  2,
);

/** Compare-and-extend. */
export const EXTEND = new LuaScript(
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`,
  1,
);

/** Compare-and-delete, then a message on ARGV[2] so standbys try at once instead of at their next poll. */
export const RELEASE = new LuaScript(
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[1])
  return 1
end
return 0
`,
  1,
);

/** Raises the fencing counter KEYS[1] to ARGV[1] if it is lower (carrying a counter over to a new key name). */
export const RAISE = new LuaScript(
  `
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
`,
  1,
);

/** Every script a lock node runs, for SCRIPT LOAD when it (re)connects. */
export const LOCK_SCRIPTS = [ACQUIRE, FENCE, EXTEND, RELEASE, RAISE] as const;

// Key names come from the one layout module; re-exported for the lock code that imports them from here.
export { fenceKey, lockKey, releaseChannel } from '../../../lib/redis/key-layout.ts';
