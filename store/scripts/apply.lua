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

local function apply_one(K, A)
  local start = A[1] == 'start'
  local expected = tonumber(A[2])
  local dedup_ttl = tonumber(A[3])
  local order = A[4]
  local n = tonumber(A[10])
  local tail = 11 + 4 * n
  local store, parked_at = A[tail], tonumber(A[tail + 1])
  local changed_at, reason = tonumber(A[tail + 2]), A[tail + 3]
  local event = start and A[tail + 8] or nil

  local saga = redis.call('HMGET', K[1], 'version', 'status', 'created_by')
  local version = tonumber(saga[1]) or 0
  local old_status = saga[2]

  if start then
    if version > 0 then
      if saga[3] == event or (dedup_ttl > 0 and redis.call('EXISTS', K[2]) == 1) then
        return {'duplicate', version}
      end
      return {'conflict', version}
    end
  else
    if dedup_ttl > 0 and redis.call('EXISTS', K[2]) == 1 then return {'duplicate', version} end
    if expected >= 0 and version ~= expected then return {'conflict', version} end
  end

  if start and A[tail + 7] == 'gcra' and
      not take_token(K[13], tonumber(A[tail + 9]), tonumber(A[tail + 10])) then
    return {'limited', 0}
  end
  local state, new_status = A[5], A[6]
  local finished, deadline = A[7] == '1', tonumber(A[9])

  -- The new saga record.
  local new_version = version + 1
  local fields = {'version', new_version, 'state', state, 'status', new_status}
  if start then
    fields[#fields + 1] = 'created_by'
    fields[#fields + 1] = event
  end
  if A[tail + 5] ~= '' then
    fields[#fields + 1] = 'order'
    fields[#fields + 1] = A[tail + 5]
  end
  redis.call('HSET', K[1], unpack(fields))
  if finished then
    redis.call('EXPIRE', K[1], tonumber(A[8]))
  elseif version > 0 then
    redis.call('PERSIST', K[1])  -- a finished saga can come back (stuck); a new one has no TTL
  end

  -- Commands into the outbox. The writer publishes them and deletes them once confirmed; an
  -- entry still there after the relay's idle time is re-sent by the partition's relay
  -- (outbox_claim.lua), so the stream id (its time) is all the bookkeeping an entry needs.
  local answer = {'applied', new_version}
  for c = 0, n - 1 do
    local a = 11 + 4 * c
    answer[#answer + 1] = redis.call('XADD', K[3], '*', 'id', A[a], 'exchange', A[a + 1],
                                     'route', A[a + 2], 'body', A[a + 3])
  end

  -- The order's next deadline (a new saga has none to clear). A deadline this change counted
  -- from its time on the caller's clock is moved by the difference when this call runs more
  -- than kLateMs away from that time on Redis' clock, which the sweeper reads (Redis was
  -- paused or slow, or the worker's clock is off): the step still gets its whole timeout after
  -- its commands could first be sent. A deadline carried over from an earlier step stays.
  if deadline > 0 then
    if A[tail + 6] == '1' then
      local off = math.floor(clock_us() / 1000) - changed_at
      if math.abs(off) > kLateMs then deadline = deadline + off end
    end
    zput(K[4], order, deadline)
  elseif version > 0 then
    zput(K[4], order, false)
  end

  -- The parked-starts index: kept with the status, so a start or a cancel of a parked saga
  -- frees its place in the same step (a parked record has no TTL).
  if store ~= '' then
    if new_status == 'parked' and old_status ~= 'parked' then
      if redis.call('ZADD', K[6], parked_at, order) == 1 then
        redis.call('HINCRBY', K[7], store, 1)
      end
    elseif old_status == 'parked' and new_status ~= 'parked' then
      if redis.call('ZREM', K[6], order) == 1 then
        if redis.call('HINCRBY', K[7], store, -1) <= 0 then redis.call('HDEL', K[7], store) end
      end
      redis.call('ZREM', K[8], order)
    end
  end

  -- Sagas per status (for `sagaflow status`).
  if old_status ~= new_status then
    if old_status then count(K[5], old_status, -1) end
    count(K[5], new_status, 1)
  end

  -- The console's indexes: each saga in the index of its status and, once it has one, of its
  -- failure reason, scored by its last change. Finished sagas are bounded per partition (the
  -- newest `cap`, none older than the record's TTL); live ones leave with their status.
  cap, ttl_ms = tonumber(A[tail + 4]), tonumber(A[8]) * 1000
  if old_status and old_status ~= new_status then zput(K[9], order, false) end
  zput(K[10], order, changed_at)
  local function trim(key)
    if (trims[key] or 0) < changed_at then trims[key] = changed_at end
  end
  if finished then trim(K[10]) end
  if reason ~= '' then
    if finished then
      zput(K[12], order, false)
      zput(K[11], order, changed_at)
      trim(K[11])
    else
      -- live again (a late success's compensation can take a failed saga to stuck)
      zput(K[11], order, false)
      zput(K[12], order, changed_at)
    end
  end

  if not start and dedup_ttl > 0 then redis.call('SET', K[2], '1', 'EX', dedup_ttl) end
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
  if not nk or not m or nk < 0 or m < 0 or a + 1 + m > #ARGV or k + nk > #KEYS then
    write_folded()
    return redis.error_reply('apply.lua: event ' .. i .. ': malformed batch')
  end
  local keys, args = {}, {}
  for j = 1, nk do keys[j] = KEYS[k + j] end
  for j = 1, m do args[j] = ARGV[a + 1 + j] end
  -- Redis does not roll a script back: if an event fails (a bug), the events before it are
  -- written, so their folded writes (deadlines, counters, tokens) are written too.
  local ok, answer = pcall(function() return table.concat(apply_one(keys, args), ' ') end)
  if not ok then
    write_folded()
    return redis.error_reply('apply.lua: event ' .. i .. ': ' .. tostring(answer))
  end
  answers[i] = answer
  k, a = k + nk, a + 2 + m
end
write_folded()
return answers
