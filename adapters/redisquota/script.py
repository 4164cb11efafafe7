"""The Lua script that runs every quota operation of one Check atomically in Redis, and its SHA1.

One script for both algorithms, so that a Check asking for several quotas costs one EVALSHA (one round
trip) however many it asks for; in a Redis Cluster, one per hash slot involved. The script never reads
Redis's clock: mixerd passes "now" (microseconds) from its own clock, so tests can drive it.
"""

from __future__ import annotations

import hashlib

SOURCE = """\
-- mixerd redisquota: every quota operation of one Check, run atomically in one call.
--
-- For operation i (0-based) KEYS[3i+1..3i+3] are its keys, all in one Cluster hash slot:
--   state  a hash: FIXED_WINDOW {e = window end, u = used}; ROLLING_WINDOW {t = newest bucket, u = used}
--   ticks  ROLLING_WINDOW: a list of "bucket:amount", oldest first (one entry per bucket with grants)
--   dedup  a string "granted end forget" for the operation's deduplication id
-- ARGV[1] is "now" in microseconds since the epoch, from mixerd's clock (never Redis's); operation i has
-- ARGV[2+9i .. 10+9i]: algorithm ("f", "r", or "a": a fixed window aligned to the epoch, for Envoy's
-- rate limits), max, amount, best effort ("1"/"0"), how long to remember the dedup id (us, 0: no id),
-- window (us) or buckets per window, the current bucket (rolling), the answer's validity (us, rolling),
-- and how long idle keys live (ms).
-- Each operation answers "hit granted x left" (hit: 1 for a remembered dedup id), all operations'
-- answers joined by spaces in one string (cheaper to read than nested arrays): x is the window end
-- (fixed), the bucket in which room opens again (rolling, when left is 0), or the earlier answer's end.
local now = tonumber(ARGV[1])

local function fit(amount, available, best)
  if amount <= 0 then return 0 end
  if amount <= available then return amount end
  if best and available > 0 then return available end
  return 0
end

local function fixed(state, max, amount, best, window, idle, aligned)
  local s = redis.call('HMGET', state, 'e', 'u')
  local ends, used = tonumber(s[1]), tonumber(s[2]) or 0
  local fresh = false
  if not ends or now >= ends then
    ends, used, fresh = now + window, 0, true
    if aligned then ends = now - now % window + window end
  end
  local granted = fit(amount, max - used, best)
  if granted > 0 or fresh then
    used = used + granted
    redis.call('HSET', state, 'e', string.format('%d', ends), 'u', string.format('%d', used))
    redis.call('PEXPIRE', state, idle)
  end
  return {0, granted, ends, max - used}
end

local function parse(entry)
  local b, a = string.match(entry, '^(%d+):(%d+)$')
  return tonumber(b), tonumber(a)
end

local function rolling(state, ticks, max, amount, best, buckets, bucket, idle)
  local s = redis.call('HMGET', state, 't', 'u')
  local newest, used = tonumber(s[1]), tonumber(s[2]) or 0
  local changed = false
  if newest and bucket < newest then
    bucket = newest -- a clock behind another replica's: count in the newest bucket
  elseif bucket ~= newest then
    changed = true
  end
  -- Buckets leave the window once they are `buckets` old; give their amounts back.
  local head = redis.call('LINDEX', ticks, 0)
  local oldest = nil
  while head do
    local b, a = parse(head)
    if b > bucket - buckets then
      oldest = b
      break
    end
    used = used - a
    changed = true
    redis.call('LPOP', ticks)
    head = redis.call('LINDEX', ticks, 0)
  end
  if not oldest then used = 0 end
  local granted = fit(amount, max - used, best)
  if granted > 0 then
    local last = redis.call('LINDEX', ticks, -1)
    local lb, la = nil, 0
    if last then lb, la = parse(last) end
    if lb == bucket then
      redis.call('LSET', ticks, -1, string.format('%d:%d', bucket, la + granted))
    else
      redis.call('RPUSH', ticks, string.format('%d:%d', bucket, granted))
    end
    if not oldest then oldest = bucket end
    used = used + granted
    changed = true
  end
  if changed then
    redis.call('HSET', state, 't', string.format('%d', bucket), 'u', string.format('%d', used))
    redis.call('PEXPIRE', state, idle)
    redis.call('PEXPIRE', ticks, idle)
  end
  local opens = 0
  if oldest then opens = oldest + buckets end
  return {0, granted, opens, max - used}
end

local out = {}
for i = 0, #KEYS / 3 - 1 do
  local state, ticks, dedup = KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3]
  local a = 2 + 9 * i
  local algorithm, max, amount = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local best, remember = ARGV[a + 3] == '1', tonumber(ARGV[a + 4])
  local window, bucket = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  local valid, idle = tonumber(ARGV[a + 7]), ARGV[a + 8]
  local answer = nil
  if remember > 0 then
    local earlier = redis.call('GET', dedup)
    if earlier then
      local g, e, f = string.match(earlier, '^(%-?%d+) (%d+) (%d+)$')
      if g and now < tonumber(f) then answer = {1, tonumber(g), tonumber(e), 0} end
    end
  end
  if not answer then
    local ends
    if algorithm == 'f' or algorithm == 'a' then
      answer = fixed(state, max, amount, best, window, idle, algorithm == 'a')
      ends = answer[3]
    else
      answer = rolling(state, ticks, max, amount, best, window, bucket, idle)
      ends = now + valid
    end
    if remember > 0 then
      local record = string.format('%d %d %d', answer[2], ends, now + remember)
      redis.call('SET', dedup, record, 'PX', string.format('%d', 2 * math.ceil(remember / 1000) + 1000))
    end
  end
  out[i + 1] = string.format('%d %d %d %d', answer[1], answer[2], answer[3], answer[4])
end
return table.concat(out, ' ')
"""

SHA = hashlib.sha1(SOURCE.encode()).hexdigest()
