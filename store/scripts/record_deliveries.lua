-- sagaflow: record the outgoing deliveries of one event, atomically with its dedup mark
-- (store/README.md, "Outgoing deliveries").
-- KEYS[1] sagaflow:{p}:dlv:<event_id>   hash body, type, created, <endpoint id> -> record
-- KEYS[2] sagaflow:{p}:dlv_due          zset "<endpoint id>:<event_id>" -> due (ms)
-- KEYS[3] sagaflow:{p}:dlv_log          zset event_id -> created (ms): the attempts log index
-- KEYS[4] sagaflow:{p}:dlv_seen:<event_id>  the dedup mark (outlives a trimmed log entry)
-- ARGV[1] event id   ARGV[2] TTL (s)   ARGV[3] log entries kept in this partition
-- ARGV[4] body       ARGV[5] type      ARGV[6] n, then n times: endpoint id, record
-- An event already recorded records nothing (returns 0). The log keeps the newest entries:
-- past its bound the oldest finished ones (delivered or dead) are dropped, a few per call; an
-- old one still pending is kept (moved to the new end), never lost.
if redis.call('EXISTS', KEYS[4]) == 1 or redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local event = ARGV[1]
local ttl = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'body', ARGV[4], 'type', ARGV[5], 'created', now)
local n = tonumber(ARGV[6])
for i = 0, n - 1 do
  local ep = ARGV[7 + 2 * i]
  redis.call('HSET', KEYS[1], ep, ARGV[8 + 2 * i])
  redis.call('ZADD', KEYS[2], now, ep .. ':' .. event)
end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('SET', KEYS[4], '1', 'EX', ttl)
redis.call('ZADD', KEYS[3], now, event)
local keep = tonumber(ARGV[3])
local size = redis.call('ZCARD', KEYS[3])
if size > keep then
  local prefix = string.sub(KEYS[1], 1, #KEYS[1] - #event)
  for _, old in ipairs(redis.call('ZRANGE', KEYS[3], 0, math.min(size - keep, 8) - 1)) do
    local key = prefix .. old
    local fields = redis.call('HGETALL', key)
    local pending = false
    for i = 1, #fields, 2 do
      if string.sub(fields[i], 1, 3) == 'ep_' then
        local ok, rec = pcall(cjson.decode, fields[i + 1])
        if ok and type(rec) == 'table' and rec.state == 'pending' then pending = true end
      end
    end
    if pending then
      redis.call('ZADD', KEYS[3], now, old)
    else
      redis.call('ZREM', KEYS[3], old)
      redis.call('DEL', key)
    end
  end
end
return 1
