-- sagaflow: lease the oldest parked start of one store in one partition (store/README.md,
-- "Parked starts").
-- KEYS[1] sagaflow:{p}:parked:<store_id>   zset order_id -> parked at (ms)
-- KEYS[2] sagaflow:{p}:parked_leases       zset order_id -> lease end (ms, Redis TIME)
-- ARGV[1] "peek" (only look) or "claim" (take a lease)
-- ARGV[2] lease length in ms
-- Returns {order_id, parked_at} of the oldest start that nobody holds a live lease on, or
-- false. A lease that ran out (its worker died between the claim and the start) is taken over;
-- the start itself is a version-checked commit, so a start runs once whoever holds the lease.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local batch = redis.call('ZRANGE', KEYS[1], 0, 63, 'WITHSCORES')
for i = 1, #batch, 2 do
  local order = batch[i]
  local lease = tonumber(redis.call('ZSCORE', KEYS[2], order))
  if not lease or lease <= now then
    if ARGV[1] == 'claim' then
      redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), order)
    end
    return {order, batch[i + 1]}
  end
end
return false
