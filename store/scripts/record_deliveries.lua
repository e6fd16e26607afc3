-- sagaflow: record the outgoing deliveries of one event, atomically with its dedup mark
-- (store/README.md, "Outgoing deliveries").
-- KEYS[1] sagaflow:{p}:dlv:<event_id>   hash body, type, created, <endpoint id> -> record
-- KEYS[2] sagaflow:{p}:dlv_due          zset "<endpoint id>:<event_id>" -> due (ms)
-- KEYS[3] sagaflow:{p}:dlv_log          zset event_id -> created (ms): the attempts log index
-- ARGV[1] event id   ARGV[2] TTL (s)   ARGV[3] log entries kept in this partition
-- ARGV[4] body       ARGV[5] type      ARGV[6] n, then n times: endpoint id, record
-- The hash itself is the dedup mark: an event already recorded records nothing (returns 0).
-- The log keeps the newest entries; an older one is dropped with its due entries.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local event = ARGV[1]
redis.call('HSET', KEYS[1], 'body', ARGV[4], 'type', ARGV[5], 'created', now)
local n = tonumber(ARGV[6])
for i = 0, n - 1 do
  local ep = ARGV[7 + 2 * i]
  redis.call('HSET', KEYS[1], ep, ARGV[8 + 2 * i])
  redis.call('ZADD', KEYS[2], now, ep .. ':' .. event)
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
redis.call('ZADD', KEYS[3], now, event)
local keep = tonumber(ARGV[3])
local size = redis.call('ZCARD', KEYS[3])
if size > keep then
  local prefix = string.sub(KEYS[1], 1, #KEYS[1] - #event)
  for _, old in ipairs(redis.call('ZRANGE', KEYS[3], 0, size - keep - 1)) do
    redis.call('ZREM', KEYS[3], old)
    local key = prefix .. old
    for _, f in ipairs(redis.call('HKEYS', key)) do
      if string.sub(f, 1, 3) == 'ep_' then redis.call('ZREM', KEYS[2], f .. ':' .. old) end
    end
    redis.call('DEL', key)
  end
end
return 1
