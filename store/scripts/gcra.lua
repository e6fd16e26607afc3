-- sagaflow: GCRA rate limit for one store (store/README.md, "Rate limits").
-- KEYS[1] sagaflow:rl:{<store_id>}: the theoretical arrival time (TAT), microseconds
-- ARGV[1] emission interval T (us) = ceil(period / rate)
-- ARGV[2] tolerance tau (us) = (burst - 1) * T
-- ARGV[3] (optional) n: admit up to n starts at once (default 1)
-- ARGV[4] (optional) "peek": only count what would be admitted, take nothing
-- Admits one when TAT - tau <= now, then TAT = max(TAT, now) + T; k at once is exactly k of
-- those in a row at the same now: k = floor((now + tau - TAT) / T) + 1, at most n. Time is
-- Redis' TIME, so all clients share one clock and one key: at most burst + window / T
-- admissions in any window.
-- Returns {k, 0} (k >= 1 admitted, or would be with "peek") or {0, retry_after_ms}.
local T = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local n = tonumber(ARGV[3] or '1')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local wait = tat - tau - now
if wait > 0 then
  return {0, math.ceil(wait / 1000)}
end
local k = math.floor((now + tau - tat) / T) + 1
if k > n then k = n end
if k < 1 then return {0, math.ceil(T / 1000)} end
if ARGV[4] ~= 'peek' then
  local new_tat = tat + k * T
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',
             math.ceil((new_tat - now) / 1000) + 1000)
end
return {k, 0}
