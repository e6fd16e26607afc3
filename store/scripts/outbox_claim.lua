-- sagaflow: the outbox entries of one partition left behind (store/README.md, "Outbox").
--
-- KEYS[1] outbox stream          sagaflow:{p}:outbox
-- KEYS[2] the partition's relay  sagaflow:{p}:outbox_relay   (string: the worker holding it)
-- ARGV[1] this worker            ARGV[2] how long the relay is held (ms)
-- ARGV[3] min idle (ms): an entry older than this was left behind (its writer died, or its
--         publish failed); a writer deletes its entries once the broker confirmed them
-- ARGV[4] where to read from: "-" or "(<stream id>" (after the last entry of the previous call)
-- ARGV[5] at most this many entries
--
-- One worker at a time relays a partition: the call takes or renews the partition's relay and
-- returns its entries older than now - min idle, oldest first, as XRANGE does. While another
-- worker holds it, only entries older than now - (min idle + hold) come back: ones its holder
-- has had a whole hold to re-send and did not (it is stuck, or its re-sends fail), so a
-- holder that renews without making progress cannot keep them from going out.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local idle = tonumber(ARGV[3])
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then
  idle = idle + tonumber(ARGV[2])
else
  redis.call('SET', KEYS[2], ARGV[1], 'PX', tonumber(ARGV[2]))
end
local upto = now - idle
if upto < 0 then return {} end
return redis.call('XRANGE', KEYS[1], ARGV[4], tostring(upto), 'COUNT', tonumber(ARGV[5]))
