-- sagaflow: GCRA rate limit for one store (store/README.md, "Rate limits").
-- KEYS[1] sagaflow:rl:{<store_id>}: the theoretical arrival time (TAT), microseconds
-- ARGV[1] emission interval T (us) = ceil(period / rate)
-- ARGV[2] tolerance tau (us) = (burst - 1) * T
-- Admits when TAT - tau <= now, then TAT = max(TAT, now) + T. Time is Redis' TIME, so all
-- clients share one clock and one key: at most burst + window / T admissions in any window.
-- Returns {1, 0} (admitted) or {0, retry_after_ms}.
local T = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local wait = tat - tau - now
if wait > 0 then
  return {0, math.ceil(wait / 1000)}
end
local new_tat = tat + T
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',
           math.ceil((new_tat - now) / 1000) + 1000)
return {1, 0}
