-- sagaflow: claim due deadlines of one partition for a lease (store/README.md).
-- KEYS[1] deadlines zset sagaflow:{p}:deadlines
-- ARGV[1] max number of orders; ARGV[2] lease in ms
-- Every due member (score <= now, Redis' own clock) is moved to now + lease, so among any
-- number of claimers exactly one gets it per lease. The apply of the timeout event then sets
-- the order's next deadline or clears it; if that worker dies, the order is due again after
-- the lease.
-- Returns {now_ms, order_id...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local until_ms = now + tonumber(ARGV[2])
local out = {now}
for i = 1, #due do
  redis.call('ZADD', KEYS[1], 'XX', until_ms, due[i])
  out[#out + 1] = due[i]
end
return out
