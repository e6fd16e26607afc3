-- sagaflow: apply the events of one loop turn to their sagas, atomically, in one call
-- (store/README.md, "apply.lua").
--
-- ARGV[1] "batch"; then per event, to the end of ARGV: its number of keys k, its number of
-- arguments m, and those m arguments; KEYS are the events' keys one after the other. (No count
-- of events up front: the worker writes each event into the call as it comes.)
-- Returns one answer per event, in order, each one string: "applied <version> <stream ids...>" or
-- "duplicate|conflict|limited <version>" (one string per event, not an array: one protocol
-- element instead of three or more, so fewer allocations to read it). Each event is checked
-- and applied on its own (a conflict or a duplicate changes only its answer), in order, so two
-- events of one saga see each other's effects; every check of an event happens before its
-- first write.
--
-- An event's keys (k = 12, or 13 for a start admitted here):
--   1 saga hash      sagaflow:{p}:saga:<order_id>   version, state, status, order, created_by
--   2 dedup mark     sagaflow:{p}:dedup:<event_id>
--   3 outbox stream  sagaflow:{p}:outbox
--   4 deadlines zset sagaflow:{p}:deadlines
--   5 stats hash     sagaflow:{p}:stats
--   6 parked zset    sagaflow:{p}:parked:<store_id>  member order_id, score = parked at (ms)
--   7 parked stores  sagaflow:{p}:parked_stores      hash store_id -> parked count
--   8 parked leases  sagaflow:{p}:parked_leases      zset order_id -> lease end (ms)
--   9 the console's index of the OLD status  sagaflow:{p}:by_status:<old> (a new saga: = 10)
--  10 the console's index of the new status  sagaflow:{p}:by_status:<new>
--  11 the console's index of the reason      sagaflow:{p}:by_reason:<reason> (finished)
--  12 the same for live sagas                sagaflow:{p}:by_reason_live:<reason>
--     (compensating, stuck: never trimmed; a saga moves to 11 when it finishes; the caller names
--     the old status's key, the version check makes sure it is the one stored)
--  13 the store's rate bucket                sagaflow:rl:{<store_id>}      (admit = "gcra")
--
-- An event's arguments (n = the number of commands):
--   1 mode: "apply", or "start" (an order.created for an order without a saga)
--   2 expected version (0 = no saga yet)   3 dedup TTL in seconds (<= 0: no dedup check/mark)
--   4 order id (the member in the zsets)   5 new state blob   6 new status
--   7 "1" when the saga is finished (the record then expires after 8 seconds)
--   8 finished record TTL in seconds
--   9 deadline in ms since the epoch ("0": clear the order's deadline)
--  10 n, then n times: id, exchange, route, body
--  then: store id, the time the saga is parked at (ms; used when the new status is parked),
--        the change's time (ms), the saga's failure reason ("" while none), the cap of finished
--        sagas kept per console index, the order facts ("": unchanged; else written), and "1"
--        when the deadline was counted by this change (then it may be moved, below)
--  a start then has: admit ("given": admitted by the caller; "park": parked by the caller;
--        "gcra": admitted here under the store's plan), the event id, and for "gcra" the
--        plan's emission interval T (us) and tolerance tau (us)
--
-- Answers:
--   "applied <new_version> <stream_id_1> ... <stream_id_n>"   (the commands' outbox entries)
--   "limited 0"                     a start over its store's limit: nothing changed (the
--                                   caller commits it as parked)
--   "duplicate <current_version>"   the event id was already applied: nothing changed
--   "conflict <current_version>"    the version did not match: nothing changed
--
-- A start is deduplicated by its saga record (created_by: the event that created it) rather
-- than a dedup mark: the record lives at least as long as a mark would (finished TTL >= dedup
-- TTL). Records from before created_by keep their marks, which are still checked.
--
-- Writes that many events of a call share (the deadlines, the console's indexes, the status
-- counters, the rate buckets) are folded per key and written once at the end of the call
-- (last write per member wins, as writing in order would), so a call of c starts costs a few
-- commands more than its c records, not a few times c.

local KEYS, ARGV = KEYS, ARGV
local zsets = {}      -- key -> { member -> score (to add) | false (to remove) }
local trims = {}      -- finished-sagas index key -> the newest change (ms) written to it
local counters = {}   -- key -> { field -> delta }
local buckets = {}    -- rate key -> { tat = us, dirty = bool }
local now_us = nil    -- Redis' TIME, read once per call (clock_us), when first needed
local cap, ttl_ms = 0, 0
local kLateMs = 250

-- The table of `key` in `folded` (created on first use).
local function entry(folded, key)
  local t = folded[key]
  if not t then
    t = {}
    folded[key] = t
  end
  return t
end

local function zput(key, member, score)
  entry(zsets, key)[member] = score
end

local function count(key, field, delta)
  local c = entry(counters, key)
  c[field] = (c[field] or 0) + delta
end

local function clock_us()
  if not now_us then
    local t = redis.call('TIME')
    now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  return now_us
end

-- GCRA (as gcra.lua, at one `now` for the whole call): admit when TAT - tau <= now, then
-- TAT = max(TAT, now) + T.
local function take_token(key, T, tau)
  local now = clock_us()
  local b = buckets[key]
  if not b then
    b = { tat = tonumber(redis.call('GET', key)) or now, dirty = false }
    buckets[key] = b
  end
  local tat = b.tat
  if tat < now then tat = now end
  if tat - tau > now then return false end
  b.tat = tat + T
  b.dirty = true
  return true
end

local function trim(key, changed_at)
  local t = tonumber(changed_at)
  if (trims[key] or 0) < t then trims[key] = t end
end

local function integer(text)
  return string.find(text, '^%-?%d+$') ~= nil
end

-- The number of commands of an event of nk keys and m arguments, its arguments after
-- ARGV[ab], when it has every key and argument its layout (above) reads (else nil), so that reading it in place never reads the next event's,
-- and integers where Redis takes them (the TTLs, the times): checked before the event's first
-- write, as Redis would refuse a bad one only at a later write, the event half written.
local function well_formed(nk, m, ab)
  if nk < 12 or m < 10 then return nil end
  local n = ARGV[ab + 10]
  if not integer(n) then return nil end
  n = tonumber(n)
  local need = 17 + 4 * n
  if n < 0 or m < need then return nil end
  if ARGV[ab + 1] == 'start' then
    need = need + 2
    if m < need then return nil end
    if ARGV[ab + need - 1] == 'gcra' then
      if nk < 13 then return nil end
      need = need + 2
    end
  end
  local tail = ab + 11 + 4 * n
  if m >= need and integer(ARGV[ab + 3]) and integer(ARGV[ab + 8]) and integer(ARGV[ab + 9]) and
      integer(ARGV[tail + 1]) and integer(ARGV[tail + 2]) then
    return n
  end
  return nil
end

-- The event whose keys follow KEYS[kb] and whose arguments follow ARGV[ab] (read in place:
-- no table per event). Times stay the strings they came as where they only go back to Redis,
-- which would otherwise print each number again.
local function apply_one(kb, ab, n)
  local saga_key, dedup_key, outbox_key = KEYS[kb + 1], KEYS[kb + 2], KEYS[kb + 3]
  local deadlines_key, stats_key = KEYS[kb + 4], KEYS[kb + 5]
  local start = ARGV[ab + 1] == 'start'
  local expected = tonumber(ARGV[ab + 2])
  local dedup_ttl = ARGV[ab + 3]
  local dedup = tonumber(dedup_ttl) > 0
  local order = ARGV[ab + 4]
  local state, new_status = ARGV[ab + 5], ARGV[ab + 6]
  local finished, finished_ttl, deadline = ARGV[ab + 7] == '1', ARGV[ab + 8], ARGV[ab + 9]
  local tail = ab + 11 + 4 * n
  local store, parked_at = ARGV[tail], ARGV[tail + 1]
  local changed_at, reason = ARGV[tail + 2], ARGV[tail + 3]
  local event = start and ARGV[tail + 8] or nil

  local saga = redis.call('HMGET', saga_key, 'version', 'status', 'created_by')
  local version = tonumber(saga[1]) or 0
  local old_status = saga[2]

  if start then
    if version > 0 then
      if saga[3] == event or (dedup and redis.call('EXISTS', dedup_key) == 1) then
        return 'duplicate ' .. version
      end
      return 'conflict ' .. version
    end
  else
    if dedup and redis.call('EXISTS', dedup_key) == 1 then return 'duplicate ' .. version end
    if expected >= 0 and version ~= expected then return 'conflict ' .. version end
  end

  if start and ARGV[tail + 7] == 'gcra' and
      not take_token(KEYS[kb + 13], tonumber(ARGV[tail + 9]), tonumber(ARGV[tail + 10])) then
    return 'limited 0'
  end

  -- The new saga record (one call per shape: no table of fields to build and unpack).
  local new_version = version + 1
  local facts = ARGV[tail + 5]
  if start and facts ~= '' then
    redis.call('HSET', saga_key, 'version', new_version, 'state', state, 'status', new_status,
               'created_by', event, 'order', facts)
  elseif start then
    redis.call('HSET', saga_key, 'version', new_version, 'state', state, 'status', new_status,
               'created_by', event)
  elseif facts ~= '' then
    redis.call('HSET', saga_key, 'version', new_version, 'state', state, 'status', new_status,
               'order', facts)
  else
    redis.call('HSET', saga_key, 'version', new_version, 'state', state, 'status', new_status)
  end
  if finished then
    redis.call('EXPIRE', saga_key, finished_ttl)
  elseif version > 0 then
    redis.call('PERSIST', saga_key)  -- a finished saga can come back (stuck); a new one has no TTL
  end

  -- Commands into the outbox. The writer publishes them and deletes them once confirmed; an
  -- entry still there after the relay's idle time is re-sent by the partition's relay
  -- (outbox_claim.lua), so the stream id (its time) is all the bookkeeping an entry needs.
  local answer = 'applied ' .. new_version
  for c = 0, n - 1 do
    local a = ab + 11 + 4 * c
    answer = answer .. ' ' .. redis.call('XADD', outbox_key, '*', 'id', ARGV[a], 'exchange',
                                         ARGV[a + 1], 'route', ARGV[a + 2], 'body', ARGV[a + 3])
  end

  -- The order's next deadline (a new saga has none to clear). A deadline this change counted
  -- from its time on the caller's clock is moved by the difference when this call runs more
  -- than kLateMs away from that time on Redis' clock, which the sweeper reads (Redis was
  -- paused or slow, or the worker's clock is off): the step still gets its whole timeout after
  -- its commands could first be sent. A deadline carried over from an earlier step stays.
  if tonumber(deadline) > 0 then
    if ARGV[tail + 6] == '1' then
      local off = math.floor(clock_us() / 1000) - tonumber(changed_at)
      if math.abs(off) > kLateMs then deadline = tonumber(deadline) + off end
    end
    zput(deadlines_key, order, deadline)
  elseif version > 0 then
    zput(deadlines_key, order, false)
  end

  -- The parked-starts index: kept with the status, so a start or a cancel of a parked saga
  -- frees its place in the same step (a parked record has no TTL).
  if store ~= '' then
    local parked_key, parked_stores_key = KEYS[kb + 6], KEYS[kb + 7]
    if new_status == 'parked' and old_status ~= 'parked' then
      if redis.call('ZADD', parked_key, parked_at, order) == 1 then
        redis.call('HINCRBY', parked_stores_key, store, 1)
      end
    elseif old_status == 'parked' and new_status ~= 'parked' then
      if redis.call('ZREM', parked_key, order) == 1 and
          redis.call('HINCRBY', parked_stores_key, store, -1) <= 0 then
        redis.call('HDEL', parked_stores_key, store)
      end
      redis.call('ZREM', KEYS[kb + 8], order)
    end
  end

  -- Sagas per status (for `sagaflow status`).
  if old_status ~= new_status then
    if old_status then count(stats_key, old_status, -1) end
    count(stats_key, new_status, 1)
  end

  -- The console's indexes: each saga in the index of its status and, once it has one, of its
  -- failure reason, scored by its last change. Finished sagas are bounded per partition (the
  -- newest `cap`, none older than the record's TTL); live ones leave with their status.
  local new_index, reason_index, live_reason_index = KEYS[kb + 10], KEYS[kb + 11], KEYS[kb + 12]
  cap, ttl_ms = tonumber(ARGV[tail + 4]), tonumber(finished_ttl) * 1000
  if old_status and old_status ~= new_status then zput(KEYS[kb + 9], order, false) end
  zput(new_index, order, changed_at)
  if finished then trim(new_index, changed_at) end
  if reason ~= '' then
    if finished then
      zput(live_reason_index, order, false)
      zput(reason_index, order, changed_at)
      trim(reason_index, changed_at)
    else
      -- live again (a late success's compensation can take a failed saga to stuck)
      zput(reason_index, order, false)
      zput(live_reason_index, order, changed_at)
    end
  end

  if not start and dedup then redis.call('SET', dedup_key, '1', 'EX', dedup_ttl) end
  return answer
end

-- One command per key for a list of arguments, in chunks that Lua's unpack takes.
local function call_chunked(command, key, list)
  local step = 1000
  for i = 1, #list, step do
    redis.call(command, key, unpack(list, i, math.min(#list, i + step - 1)))
  end
end

local function write_folded()
  for key, members in pairs(zsets) do
    local add, remove = {}, {}
    for member, score in pairs(members) do
      if score then
        add[#add + 1] = score
        add[#add + 1] = member
      else
        remove[#remove + 1] = member
      end
    end
    call_chunked('ZADD', key, add)
    call_chunked('ZREM', key, remove)
  end
  -- Only finished sagas are ever trimmed: a live one (running, compensating, stuck) stays
  -- listed, whatever its age, until it changes.
  for key, newest in pairs(trims) do
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. (newest - ttl_ms))
    local size = redis.call('ZCARD', key)
    if size > cap then redis.call('ZREMRANGEBYRANK', key, 0, size - cap - 1) end
  end
  for key, fields in pairs(counters) do
    for field, delta in pairs(fields) do
      if delta ~= 0 then redis.call('HINCRBY', key, field, delta) end
    end
  end
  for key, b in pairs(buckets) do
    if b.dirty then
      redis.call('SET', key, string.format('%.0f', b.tat), 'PX',
                 math.ceil((b.tat - now_us) / 1000) + 1000)
    end
  end
end

-- "touch": KEYS[1] a saga record, ARGV[2] an event id: rewrites created_by if the record still
-- exists (never creates one). A duplicate start with WAIT_REPLICAS writes this before its WAIT.
if ARGV[1] == 'touch' then
  if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'created_by', ARGV[2]) end
  return 1
end
if ARGV[1] ~= 'batch' then return redis.error_reply('apply.lua: unknown mode ' .. tostring(ARGV[1])) end
local answers = {}
local i, k, a = 0, 0, 2
while a <= #ARGV do
  i = i + 1
  local nk, m = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local n = nk and m and nk >= 0 and m >= 0 and a + 1 + m <= #ARGV and k + nk <= #KEYS and
                well_formed(nk, m, a + 1)
  if not n then
    write_folded()
    return redis.error_reply('apply.lua: event ' .. i .. ': malformed batch')
  end
  -- Redis does not roll a script back: if an event fails (a bug), the events before it are
  -- written, so their folded writes (deadlines, counters, tokens) are written too.
  local ok, answer = pcall(apply_one, k, a + 1, n)
  if not ok then
    write_folded()
    return redis.error_reply('apply.lua: event ' .. i .. ': ' .. tostring(answer))
  end
  answers[i] = answer
  k, a = k + nk, a + 2 + m
end
write_folded()
return answers
