-- sagaflow: compare-and-set of one string key (the breaker state of an endpoint).
-- KEYS[1] the key   ARGV[1] the value expected ('' = no key)   ARGV[2] the new value
-- ARGV[3] TTL of the new value in ms (0: none)
-- Returns {1} when written, {0, current value} when the key held something else.
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return {0, cur} end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
elseif tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[3]))
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return {1}
