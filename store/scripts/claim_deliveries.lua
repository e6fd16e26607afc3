-- sagaflow: claim due deliveries of one partition for a lease (store/README.md, "Outgoing
-- deliveries").
-- KEYS[1] sagaflow:{p}:dlv_due   KEYS[2] the key prefix sagaflow:{p}:dlv: (not a key itself)
-- ARGV[1] max number   ARGV[2] lease (ms)
-- Each due member is moved to now + lease (one claimer per lease; a dead claimer's delivery is
-- due again after it). A member whose event or endpoint record is gone (log trimmed, TTL,
-- endpoint removed) is dropped.
-- Returns {now, endpoint, event, body, record, ...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local lease_end = now + tonumber(ARGV[2])
local out = {now}
for _, member in ipairs(due) do
  local colon = string.find(member, ':', 1, true)
  local ep = colon and string.sub(member, 1, colon - 1) or ''
  local event = colon and string.sub(member, colon + 1) or ''
  local values = redis.call('HMGET', KEYS[2] .. event, 'body', ep)
  if values[1] and values[2] then
    redis.call('ZADD', KEYS[1], 'XX', lease_end, member)
    out[#out + 1] = ep
    out[#out + 1] = event
    out[#out + 1] = values[1]
    out[#out + 1] = values[2]
  else
    redis.call('ZREM', KEYS[1], member)
  end
end
return out
