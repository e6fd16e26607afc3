-- sagaflow: the dead-letter index (store/dead_letters.hpp), under one hash tag {dlq}.
--
-- KEYS[1] entries   hash  id -> the entry as JSON
-- KEYS[2] all       zset  id -> dead-lettered at (ms)
-- KEYS[3] counts    hash  reason -> entries with it
-- KEYS[4] reason_of hash  id -> reason
-- ARGV[1] mode, ARGV[2] the prefix of the per-reason zsets ("sagaflow:{dlq}:reason:"; the keys
--         are built here from it and share the tag, so every key is in KEYS' slot)
-- mode "add":    ARGV[3] id, ARGV[4] at (ms), ARGV[5] reason, ARGV[6] JSON, ARGV[7] cap
--                returns 1 when added, 0 when the id was there already
-- mode "remove": ARGV[3...] ids; returns how many were there

local mode = ARGV[1]
local prefix = ARGV[2]

local function drop(id)
  if redis.call('HDEL', KEYS[1], id) == 0 then return 0 end
  redis.call('ZREM', KEYS[2], id)
  local reason = redis.call('HGET', KEYS[4], id)
  if reason then
    redis.call('HDEL', KEYS[4], id)
    redis.call('ZREM', prefix .. reason, id)
    if redis.call('HINCRBY', KEYS[3], reason, -1) <= 0 then redis.call('HDEL', KEYS[3], reason) end
  end
  return 1
end

if mode == 'add' then
  local id, at, reason = ARGV[3], tonumber(ARGV[4]), ARGV[5]
  if redis.call('HSETNX', KEYS[1], id, ARGV[6]) == 0 then return 0 end
  redis.call('ZADD', KEYS[2], at, id)
  redis.call('ZADD', prefix .. reason, at, id)
  redis.call('HSET', KEYS[4], id, reason)
  redis.call('HINCRBY', KEYS[3], reason, 1)
  -- Bounded: the oldest entries leave the index (their messages stay in the broker).
  local cap = tonumber(ARGV[7])
  local n = redis.call('ZCARD', KEYS[2])
  if n > cap then
    for _, old in ipairs(redis.call('ZRANGE', KEYS[2], 0, n - cap - 1)) do drop(old) end
  end
  return 1
elseif mode == 'remove' then
  local removed = 0
  for i = 3, #ARGV do removed = removed + drop(ARGV[i]) end
  return removed
end
return redis.error_reply('dead_letters.lua: unknown mode ' .. tostring(mode))
