-- sagaflow: write one delivery's record after an attempt (or a replay), and its next due time
-- (store/README.md, "Outgoing deliveries").
-- KEYS[1] sagaflow:{p}:dlv:<event_id>   KEYS[2] sagaflow:{p}:dlv_due
-- ARGV[1] endpoint id   ARGV[2] event id   ARGV[3] record   ARGV[4] due (ms; 0: not due again)
-- Returns 1, or 0 when the event's record is gone (trimmed or expired): nothing is written.
local member = ARGV[1] .. ':' .. ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], member)
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
local due = tonumber(ARGV[4])
if due > 0 then
  redis.call('ZADD', KEYS[2], due, member)
else
  redis.call('ZREM', KEYS[2], member)
end
return 1
