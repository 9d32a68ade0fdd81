import { LuaScript } from '../../redis/lua-script.ts';

/*
 * The Global limit scripts. Each is one atomic step on one key, timed by the Redis server's clock
 * (`TIME`) so that sidecars with skewed clocks still share one notion of "now".
 *
 * Both take the same arguments, and their replies decode (gcraAnswer, slidingWindowAnswer) to the
 * same answer, so the limiter does not care which algorithm it talks to:
 *   ARGV[1] period (ms)   ARGV[2] requests per period   ARGV[3] capacity (burst)
 *   ARGV[4] want          ARGV[5] min
 *   → ScriptAnswer { granted, remaining, retryAfterMs, resetMs }
 * `want` > 1 takes a batch of tokens in one round trip (lease mode). Nothing is granted unless at
 * least `min` tokens are available, and then retryAfterMs says when `min` will be: a sidecar that
 * leases batches then waits for a batch's worth instead of coming back once per freed token.
 * Strict mode calls with want = min = 1.
 *
 * Scripts run once per decision in strict mode, so what they do inside Redis is the decision's
 * server-side cost: they run the fewest commands and return the least the client needs to derive
 * the rest (measured with INFO commandstats in bench/global-limit.bench.ts).
 */

export interface ScriptAnswer {
  granted: number;
  remaining: number;
  retryAfterMs: number;
  resetMs: number;
}

/**
 * TokenBucket as GCRA. The state is one number, the theoretical arrival time (TAT, µs since the
 * epoch — below 2^53, so exact in Lua's doubles). It is written with %.17g because Lua's
 * tostring() keeps only 14 digits and would round microseconds away.
 *
 * The reply is `{ granted, ⌈tat − now⌉ }` (µs, an integer): remaining, retry and reset follow from
 * it and the rule's constants on the client (gcraAnswer), which keeps the script to three commands
 * (TIME, GET, SET) and a two-integer reply. Rounding up errs toward fewer remaining and a later
 * retry, never the other way.
 */
export const GCRA = new LuaScript(
  `
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local T = ARGV[1] * 1000 / ARGV[2]
local want = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local avail = math.floor((now + T * ARGV[3] - tat) / T + 1e-6)
local n = 0
if avail >= tonumber(ARGV[5]) then
  n = want
  if avail < want then n = avail end
  tat = tat + n * T
  redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
end
return { n, math.ceil(tat - now) }
`,
  1,
);

/** Decodes GCRA's `{ granted, tat − now }` for a rule of `requests` per `periodMs` and `capacity`. */
export function gcraAnswer(reply: unknown, periodMs: number, requests: number, capacity: number, min: number): ScriptAnswer {
  const r = reply as [number, number];
  const granted = r[0];
  const ahead = r[1]; // µs until the bucket is full again
  const T = (periodMs * 1000) / requests;
  const tau = T * capacity;
  return {
    granted,
    remaining: Math.max(0, Math.floor((tau - ahead) / T + 1e-6)),
    retryAfterMs: granted > 0 ? 0 : Math.max(0, Math.ceil((ahead + min * T - tau) / 1000)),
    resetMs: Math.ceil(ahead / 1000),
  };
}

/**
 * GCRA with warm-up (see limit/warm-up.ts for the rule): the partition is a hash of its TAT, its
 * coldness c (1 cold … 0 warm) and when c was last brought up to date (u), all in µs of Redis
 * time. Time the bucket spent not full since u warms it, time it spent full cools it, both at
 * 1 / period; tokens are then spaced T / factor apart. Keeping c in Redis means a sidecar that
 * restarts finds the shared limit as warm as the other sidecars kept it.
 *   ARGV[1..5] as GCRA   ARGV[6] warm-up period (ms)   ARGV[7] coldFactor
 *   → { granted, ⌈tat − now⌉ µs, factor × 10^6 }
 * The key outlives the TAT by one period: by then the partition would be cold anyway.
 */
export const GCRA_WARM = new LuaScript(
  `
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local T = ARGV[1] * 1000 / ARGV[2]
local want = tonumber(ARGV[4])
local P = tonumber(ARGV[6]) * 1000
local F = tonumber(ARGV[7])
local s = redis.call('HMGET', KEYS[1], 'tat', 'c', 'u')
local tat = tonumber(s[1]) or now
local c = tonumber(s[2]) or 1
local u = tonumber(s[3]) or now
if now > u then
  local busy = math.max(0, math.min(now, tat) - u)
  local idle = math.max(0, now - math.max(u, tat))
  c = c + (idle - busy) / P
  if c < 0 then c = 0 elseif c > 1 then c = 1 end
end
local f = 1 / F + (1 - 1 / F) * (1 - c)
local Ti = T / f
if tat < now then tat = now end
local avail = math.floor((now + T * ARGV[3] - tat) / Ti + 1e-6)
local n = 0
if avail >= tonumber(ARGV[5]) then
  n = want
  if avail < want then n = avail end
  tat = tat + n * Ti
end
redis.call('HSET', KEYS[1], 'tat', string.format('%.17g', tat), 'c', string.format('%.17g', c), 'u', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((tat - now + P) / 1000) + 1)
return { n, math.ceil(tat - now), math.floor(f * 1000000) }
`,
  1,
);

/** Decodes GCRA_WARM's `{ granted, tat − now, factor × 10^6 }`: GCRA's answer at the warm interval. */
export function gcraWarmAnswer(reply: unknown, periodMs: number, requests: number, capacity: number, min: number): ScriptAnswer {
  const r = reply as [number, number, number];
  const f = Math.max(1e-6, r[2] / 1e6);
  const T = (periodMs * 1000) / requests;
  const tau = T * capacity;
  const Ti = T / f;
  return {
    granted: r[0],
    remaining: Math.max(0, Math.floor((tau - r[1]) / Ti + 1e-6)),
    retryAfterMs: r[0] > 0 ? 0 : Math.max(0, Math.ceil((r[1] + min * Ti - tau) / 1000)),
    resetMs: Math.ceil(r[1] / 1000),
  };
}

/**
 * SLIDING_WINDOW with warm-up: the same hash gains the coldness k and its update time u (ms).
 * The time since u counts as in use when the weighted count is at least limit / coldFactor; the
 * window admits floor(limit × factor).   ARGV[6] warm-up period (ms)   ARGV[7] coldFactor.
 */
export const SLIDING_WINDOW_WARM = new LuaScript(
  `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local W = tonumber(ARGV[1])
local full = tonumber(ARGV[2])
local want = tonumber(ARGV[4])
local min = tonumber(ARGV[5])
local P = tonumber(ARGV[6])
local F = tonumber(ARGV[7])
local w = math.floor(now / W)
local e = now - w * W
local s = redis.call('HMGET', KEYS[1], 'w', 'c', 'p', 'k', 'u')
local sw = tonumber(s[1] or '-2')
local c = tonumber(s[2] or '0')
local p = tonumber(s[3] or '0')
local k = tonumber(s[4] or '1')
local u = tonumber(s[5] or tostring(now))
if sw == w - 1 then p = c; c = 0 elseif sw ~= w then p = 0; c = 0 end
local eps = 1e-6
local count = p * (W - e) / W + c
if now > u then
  if count >= full / F then k = k - (now - u) / P else k = k + (now - u) / P end
  if k < 0 then k = 0 elseif k > 1 then k = 1 end
end
local limit = math.max(1, math.floor(full * (1 / F + (1 - 1 / F) * (1 - k)) + eps))
local avail = math.floor(limit - count + eps)
local n = 0
if avail >= min then
  n = math.min(want, avail)
  c = c + n
end
redis.call('HSET', KEYS[1], 'w', w, 'c', c, 'p', p, 'k', string.format('%.17g', k), 'u', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(2 * W + P))
local remaining = math.max(0, math.floor(limit - (p * (W - e) / W + c) + eps))
local retry = 0
if n == 0 then
  if c + min <= limit and p > 0 then
    retry = (W - (limit - min - c) * W / p) - e
  else
    retry = (W - e) + math.max(0, W - (limit - min) * W / math.max(c, 1))
  end
  retry = math.max(0, math.ceil(retry))
end
local reset = 0
if c > 0 then reset = (W - e) + W elseif p > 0 then reset = W - e end
return { n, remaining, retry, math.ceil(reset) }
`,
  1,
);

/** Decodes SLIDING_WINDOW's `{ granted, remaining, retryAfterMs, resetMs }`. */
export function slidingWindowAnswer(reply: unknown): ScriptAnswer {
  const r = reply as [number, number, number, number];
  return { granted: r[0], remaining: r[1], retryAfterMs: r[2], resetMs: r[3] };
}

/**
 * SlidingWindow as the two-window weighted counter: the previous fixed window's count, weighted
 * by how much of it still overlaps the sliding window, plus the current one's. One hash per
 * partition (w = current window index, c = its count, p = the previous window's count), so the
 * script declares the only key it touches.
 */
export const SLIDING_WINDOW = new LuaScript(
  `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local W = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local want = tonumber(ARGV[4])
local min = tonumber(ARGV[5])
local w = math.floor(now / W)
local e = now - w * W
local s = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
local sw = tonumber(s[1] or '-2')
local c = tonumber(s[2] or '0')
local p = tonumber(s[3] or '0')
if sw == w - 1 then p = c; c = 0 elseif sw ~= w then p = 0; c = 0 end
local eps = 1e-6
local count = p * (W - e) / W + c
local avail = math.floor(limit - count + eps)
local n = 0
if avail >= min then
  n = math.min(want, avail)
  c = c + n
  redis.call('HSET', KEYS[1], 'w', w, 'c', c, 'p', p)
  redis.call('PEXPIRE', KEYS[1], math.ceil(2 * W))
end
local remaining = math.max(0, math.floor(limit - (p * (W - e) / W + c) + eps))
local retry = 0
if n == 0 then
  if c + min <= limit then
    retry = (W - (limit - min - c) * W / p) - e
  else
    retry = (W - e) + math.max(0, W - (limit - min) * W / c)
  end
  retry = math.max(0, math.ceil(retry))
end
local reset = 0
if c > 0 then reset = (W - e) + W elseif p > 0 then reset = W - e end
return { n, remaining, retry, math.ceil(reset) }
`,
  1,
);

/**
 * Presence of the sidecars sharing a rule: a sorted set of sidecar ids scored by the server time
 * of their last heartbeat. Members older than the expiry are dropped on every beat, and the key
 * itself expires when every sidecar is gone. Returns how many are alive.
 *   ARGV[1] sidecar id   ARGV[2] expiry (ms)
 */
export const HEARTBEAT = new LuaScript(
  `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - expiry)
redis.call('PEXPIRE', KEYS[1], expiry * 2)
return redis.call('ZCARD', KEYS[1])
`,
  1,
);
