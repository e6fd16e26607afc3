-- sagaflow: lease parked starts of one store in one partition (store/README.md, "Parked
-- starts").
-- KEYS[1] sagaflow:{p}:parked:<store_id>   zset order_id -> parked at (ms)
-- KEYS[2] sagaflow:{p}:parked_leases       zset order_id -> lease end (ms, Redis TIME)
-- "peek", n: returns {order_id, parked_at, ...} of the n oldest starts that nobody holds a
--   live lease on (looks at the 2n + 64 oldest), and leases nothing.
-- "claim", lease_ms, order_id...: leases each given start that is still parked and not held
--   by a live lease; returns the order ids leased.
-- A lease that ran out (its worker died between the claim and the start) is taken over; the
-- start itself is a version-checked commit, so a start runs once whoever holds the lease.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
if ARGV[1] == 'peek' then
  local n = tonumber(ARGV[2])
  local batch = redis.call('ZRANGE', KEYS[1], 0, 2 * n + 63, 'WITHSCORES')
  for i = 1, #batch, 2 do
    local lease = tonumber(redis.call('ZSCORE', KEYS[2], batch[i]))
    if not lease or lease <= now then
      out[#out + 1] = batch[i]
      out[#out + 1] = batch[i + 1]
      if #out >= 2 * n then break end
    end
  end
  return out
end
local lease_end = now + tonumber(ARGV[2])
for i = 3, #ARGV do
  local order = ARGV[i]
  if redis.call('ZSCORE', KEYS[1], order) then
    local lease = tonumber(redis.call('ZSCORE', KEYS[2], order))
    if not lease or lease <= now then
      redis.call('ZADD', KEYS[2], lease_end, order)
      out[#out + 1] = order
    end
  end
end
return out
