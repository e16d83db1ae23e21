/**
 * The Lua scripts of the shared limit store (redis-limit-store.ts), kept as strings so `dist/`
 * needs no asset copied. Each runs atomically in Redis (https://redis.io/docs/latest/develop/interactive/programmability/eval-intro/):
 * a decision reads and writes a key's state with no other instance in between. Time is Redis's
 * own clock (TIME), one clock for every instance; calendar periods (rpd, budgets) are named by
 * the caller, whose clock decides which UTC day or month a request falls in.
 *
 * Every script does work bounded by what it evicts or by a fixed cap, and sets a TTL on every key
 * it writes, so an abandoned key's state disappears by itself.
 *
 * Data of one app key `K` (all under the gateway's `redis_prefix`; `{K}` is a hash tag, so a
 * key's data stays on one Redis Cluster slot):
 *   l:{K}:r   ZSET  admission id → admit time (ms): the rpm window
 *   l:{K}:t   ZSET  admission id → admit time (ms): the tpm window
 *   l:{K}:ta  HASH  admission id → tokens counted in the tpm window; `#s` their sum
 *   l:{K}:h   ZSET  admission id → deadline (ms): the reservations in flight
 *   l:{K}:hv  HASH  admission id → "tokens nanodollars" held; `#t`, `#u` their sums
 *   l:{K}:d:N HASH  UTC day N (days since the epoch): q requests, t tokens, u nanodollars, c seeded at
 *   l:{K}:m:N HASH  UTC month N (year × 12 + month), same fields
 *   l:{K}:a   HASH  the key's whole life, same fields
 * Money is counted in integer nanodollars (costs are whole nanodollars, metering/pricing.ts): sums
 * never drift, and Lua's doubles are exact up to 2^53 nanodollars (about $9 million).
 */

/** Lua shared by the scripts: the clock, window eviction, and the ledgers that exist. */
const PRELUDE = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local WINDOW = 60000
local function num(value) return tonumber(value) or 0 end
-- Drops tpm entries that left the window (admitted at or before now - 60 s), keeping the sum.
local function evictTokens(t, ta)
  local cutoff = now - WINDOW
  local freed = 0
  -- In slices: unpack() has a bounded stack.
  while true do
    local old = redis.call('ZRANGEBYSCORE', t, '-inf', cutoff, 'LIMIT', 0, 1000)
    if #old == 0 then break end
    local amounts = redis.call('HMGET', ta, unpack(old))
    for i = 1, #old do freed = freed + num(amounts[i]) end
    redis.call('HDEL', ta, unpack(old))
    redis.call('ZREM', t, unpack(old))
  end
  if freed > 0 then redis.call('HINCRBY', ta, '#s', 0 - freed) end
end
-- Sets the amount of a tpm entry still in the window.
local function setTokens(t, ta, id, amount)
  local at = redis.call('ZSCORE', t, id)
  if not at or tonumber(at) <= now - WINDOW then return end
  local old = num(redis.call('HGET', ta, id))
  redis.call('HSET', ta, id, amount)
  redis.call('HINCRBY', ta, '#s', amount - old)
end
-- Releases a reservation's hold; returns whether it was still held.
local function unhold(h, hv, id)
  local held = redis.call('HGET', hv, id)
  redis.call('ZREM', h, id)
  if not held then return false end
  local tokens, nano = string.match(held, '^(%d+) (%d+)$')
  -- 0 - x, not -x: -0 prints as "-0", which HINCRBY refuses.
  redis.call('HINCRBY', hv, '#t', 0 - tonumber(tokens))
  redis.call('HINCRBY', hv, '#u', 0 - tonumber(nano))
  redis.call('HDEL', hv, id)
  return true
end
local function atLeast(key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
`;

/**
 * Admits one request or refuses it.
 * KEYS: r, t, ta, h, hv, day, month, total.
 * ARGV: id, rpm, tpm, rpd, budget tokens, budget nanodollars, budget period (0 none, 1 day,
 * 2 month, 3 total), tokens, nanodollars, hold ms, total ledger TTL ms; a limit of -1 is none.
 * Returns {status, now, requests in the rpm window, last admit time in it, the admit time that
 * frees a slot (refused on rpm), tokens in the tpm window, last admit time in it, the time enough
 * tokens have left (refused on tpm), requests today, the budget period's tokens, its
 * nanodollars, tokens held, nanodollars held}; status 0 admitted, 1 refused. A ledger the
 * limits need that does not exist yet returns {2, period} (seed it, then ask again).
 */
export const ADMIT_SCRIPT = `${PRELUDE}
local id = ARGV[1]
local rpm, tpm, rpd = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local budgetTokens, budgetNano, period = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local tokens, nano, holdMs, totalTtl = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local ledgerKeys = {KEYS[6], KEYS[7], KEYS[8]}
if (rpd >= 0 or period == 1) and redis.call('EXISTS', KEYS[6]) == 0 then return {2, 1} end
if period > 1 and redis.call('EXISTS', ledgerKeys[period]) == 0 then return {2, period} end

-- Reservations of an instance that died are dropped at their deadline, a bounded number per call.
local expired = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 64)
for i = 1, #expired do unhold(KEYS[4], KEYS[5], expired[i]) end

local fit = true
local rpmFail, tpmFail = false, false
local requests, lastRequest, requestAt = 0, 0, 0
if rpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - WINDOW)
  requests = redis.call('ZCARD', KEYS[1])
  if requests >= rpm then fit = false; rpmFail = true end
end
local used, lastTokens, tokensAt = 0, 0, 0
if tpm >= 0 then
  evictTokens(KEYS[2], KEYS[3])
  used = num(redis.call('HGET', KEYS[3], '#s'))
  if tokens > tpm or used + tokens > tpm then fit = false; tpmFail = tokens <= tpm end
end
local today = 0
if redis.call('EXISTS', KEYS[6]) == 1 then today = num(redis.call('HGET', KEYS[6], 'q')) end
if rpd >= 0 and today >= rpd then fit = false end
local spentTokens, spentNano, heldTokens, heldNano = 0, 0, 0, 0
if period > 0 then
  local spent = redis.call('HMGET', ledgerKeys[period], 't', 'u')
  spentTokens, spentNano = num(spent[1]), num(spent[2])
  local held = redis.call('HMGET', KEYS[5], '#t', '#u')
  heldTokens, heldNano = num(held[1]), num(held[2])
  if budgetTokens >= 0 and spentTokens + heldTokens + tokens > budgetTokens then fit = false end
  if budgetNano >= 0 and spentNano + heldNano + nano > budgetNano then fit = false end
end

if not fit then
  if requests > 0 then lastRequest = num(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]) end
  if rpmFail and rpm > 0 then requestAt = num(redis.call('ZRANGE', KEYS[1], requests - rpm, requests - rpm, 'WITHSCORES')[2]) end
  local entries = {}
  if tpm >= 0 then entries = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES') end
  if #entries > 0 then lastTokens = num(entries[#entries]) end
  if tpmFail then
    -- The earliest time enough tokens have left the window: walk from the oldest entry.
    local need, freed = used + tokens - tpm, 0
    tokensAt = lastTokens
    for i = 1, #entries, 2 do
      freed = freed + num(redis.call('HGET', KEYS[3], entries[i]))
      if freed >= need then tokensAt = num(entries[i + 1]); break end
    end
  end
  return {1, now, requests, lastRequest, requestAt, used, lastTokens, tokensAt, today, spentTokens, spentNano, heldTokens, heldNano}
end

if rpm >= 0 then
  redis.call('ZADD', KEYS[1], now, id)
  redis.call('PEXPIRE', KEYS[1], WINDOW + 1000)
  requests, lastRequest = requests + 1, now
end
if tpm >= 0 then
  redis.call('ZADD', KEYS[2], now, id)
  redis.call('HSET', KEYS[3], id, tokens)
  redis.call('HINCRBY', KEYS[3], '#s', tokens)
  redis.call('PEXPIRE', KEYS[2], WINDOW + 1000)
  redis.call('PEXPIRE', KEYS[3], WINDOW + 1000)
  used, lastTokens = used + tokens, now
end
-- Every ledger the key has counts the request, not only the ones today's limits read.
for i = 1, 3 do
  if redis.call('EXISTS', ledgerKeys[i]) == 1 then redis.call('HINCRBY', ledgerKeys[i], 'q', 1) end
end
if redis.call('EXISTS', KEYS[8]) == 1 then redis.call('PEXPIRE', KEYS[8], totalTtl) end
if tokens > 0 or nano > 0 then
  redis.call('ZADD', KEYS[4], now + holdMs, id)
  -- ARGV's own digits: Lua would print a large number in exponent notation.
  redis.call('HSET', KEYS[5], id, ARGV[8] .. ' ' .. ARGV[9])
  redis.call('HINCRBY', KEYS[5], '#t', tokens)
  redis.call('HINCRBY', KEYS[5], '#u', nano)
  atLeast(KEYS[4], holdMs + WINDOW)
  atLeast(KEYS[5], holdMs + WINDOW)
  heldTokens, heldNano = heldTokens + tokens, heldNano + nano
end
return {0, now, requests, lastRequest, 0, used, lastTokens, 0, today + 1, spentTokens, spentNano, heldTokens, heldNano}
`;

/**
 * Ends or changes one reservation.
 * KEYS: t, ta, h, hv, day, month, total.
 * ARGV: id, mode, tokens, nanodollars, hold ms. Modes: `s` settle (release the hold, set the tpm
 * entry to the tokens used, add tokens and cost to every ledger the key has), `r` refund (release
 * the hold, tpm entry to 0), `k` keep (hold `tokens`/`nanodollars` instead, until now + hold ms).
 * A settle after the hold expired still counts the spend. Returns 1 when the hold was still there.
 */
export const RELEASE_SCRIPT = `${PRELUDE}
local id, mode = ARGV[1], ARGV[2]
local tokens, nano, holdMs = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local held
if mode == 'k' then
  held = redis.call('HEXISTS', KEYS[4], id) == 1
  if held then
    unhold(KEYS[3], KEYS[4], id)
    redis.call('ZADD', KEYS[3], now + holdMs, id)
    redis.call('HSET', KEYS[4], id, ARGV[3] .. ' ' .. ARGV[4])
    redis.call('HINCRBY', KEYS[4], '#t', tokens)
    redis.call('HINCRBY', KEYS[4], '#u', nano)
    atLeast(KEYS[3], holdMs + WINDOW)
    atLeast(KEYS[4], holdMs + WINDOW)
  end
  setTokens(KEYS[1], KEYS[2], id, tokens)
else
  held = unhold(KEYS[3], KEYS[4], id)
  if mode == 's' then
    setTokens(KEYS[1], KEYS[2], id, tokens)
    for i = 5, 7 do
      if redis.call('EXISTS', KEYS[i]) == 1 then
        redis.call('HINCRBY', KEYS[i], 't', tokens)
        redis.call('HINCRBY', KEYS[i], 'u', nano)
      end
    end
  else
    setTokens(KEYS[1], KEYS[2], id, 0)
  end
end
if held then return 1 end
return 0
`;

/**
 * Counts usage no reservation held: a background response's (into the tpm window and the
 * ledgers), or what this instance admitted on its own while Redis was away (ledgers only).
 * KEYS: t, ta, day, month, total. ARGV: id, into the tpm window (1/0), requests, tokens,
 * nanodollars, since (ms; a ledger seeded from the database at or after it already has the
 * usage, so it is skipped; 0 adds to every ledger).
 */
export const RECORD_SCRIPT = `${PRELUDE}
local id, window = ARGV[1], ARGV[2] == '1'
local requests, tokens, nano, since = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if window then
  evictTokens(KEYS[1], KEYS[2])
  redis.call('ZADD', KEYS[1], now, id)
  redis.call('HSET', KEYS[2], id, tokens)
  redis.call('HINCRBY', KEYS[2], '#s', tokens)
  redis.call('PEXPIRE', KEYS[1], WINDOW + 1000)
  redis.call('PEXPIRE', KEYS[2], WINDOW + 1000)
end
for i = 3, 5 do
  if redis.call('EXISTS', KEYS[i]) == 1 and (since == 0 or num(redis.call('HGET', KEYS[i], 'c')) < since) then
    redis.call('HINCRBY', KEYS[i], 'q', requests)
    redis.call('HINCRBY', KEYS[i], 't', tokens)
    redis.call('HINCRBY', KEYS[i], 'u', nano)
  end
end
return 1
`;

/**
 * Creates a ledger from the usage database's baseline unless it exists: the first instance
 * that loads it wins, and every other one's (older or newer) read is dropped.
 * KEYS: ledger. ARGV: requests, tokens, nanodollars, expire at (ms since the epoch) or 0 with a
 * TTL in ms. Returns 1 when this call created it.
 */
export const SEED_SCRIPT = `${PRELUDE}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'q', ARGV[1], 't', ARGV[2], 'u', ARGV[3], 'c', now)
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIREAT', KEYS[1], ARGV[4]) else redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
return 1
`;
