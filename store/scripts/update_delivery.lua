-- sagaflow: write one delivery's record after an attempt (or a replay), and its next due time
-- (store/README.md, "Outgoing deliveries").
-- KEYS[1] sagaflow:{p}:dlv:<event_id>   KEYS[2] sagaflow:{p}:dlv_due
-- ARGV[1] endpoint id   ARGV[2] event id   ARGV[3] record   ARGV[4] due (ms; 0: not due again)
-- ARGV[5] the record as read by the writer ('' = write whatever is there)
-- ARGV[6] TTL (s): the event is kept at least that long after its last due time
-- Returns 1; 0 when the event's record is gone (expired) or changed since the writer read it
-- (another worker's attempt after a lease ran out, or a replay): nothing is written.
local member = ARGV[1] .. ':' .. ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], member)
  return 0
end
if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[5] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
local due = tonumber(ARGV[4])
local ttl = tonumber(ARGV[6])
if due > 0 then
  redis.call('ZADD', KEYS[2], due, member)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  ttl = ttl + math.max(0, math.ceil((due - now) / 1000))
else
  redis.call('ZREM', KEYS[2], member)
end
redis.call('EXPIRE', KEYS[1], ttl, 'GT')
return 1
