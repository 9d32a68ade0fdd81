import { LuaScript } from '../redis/lua-script.ts';

/**
 * Compare-and-set-max, atomic on one lock node: the token ARGV[1] is accepted when it is at least
 * the newest one this node has accepted for the resource (KEYS[1]), and then becomes the newest.
 * Returns {1, stored before} when accepted, {0, stored} when the token is older. The key never
 * expires: forgetting it would let an old token through again (like the fence counter, see
 * docs/leader-election.md). Tokens are integers below 2^53, exact in Lua's doubles.
 */
export const ACCEPT_TOKEN = new LuaScript(
  `
local stored = tonumber(redis.call('GET', KEYS[1])) or 0
local token = tonumber(ARGV[1])
if token < stored then return {0, stored} end
if token > stored then redis.call('SET', KEYS[1], ARGV[1]) end
return {1, stored}
`,
  1,
);
