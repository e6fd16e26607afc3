-- sagaflow: apply one event to one saga, atomically (store/README.md, "apply.lua").
--
-- KEYS[1] saga hash      sagaflow:{p}:saga:<order_id>    (version, state, status)
-- KEYS[2] dedup mark     sagaflow:{p}:dedup:<event_id>
-- KEYS[3] outbox stream  sagaflow:{p}:outbox
-- KEYS[4] deadlines zset sagaflow:{p}:deadlines
-- KEYS[5] stats hash     sagaflow:{p}:stats
-- KEYS[6] parked zset    sagaflow:{p}:parked:<store_id>  member order_id, score = parked at (ms)
-- KEYS[7] parked stores  sagaflow:{p}:parked_stores      hash store_id -> parked count
-- KEYS[8] parked leases  sagaflow:{p}:parked_leases      zset order_id -> lease end (ms)
-- ARGV[1]  mode: "apply" (the only one)
-- ARGV[2]  expected version (0 = no saga yet)
-- ARGV[3]  dedup TTL in seconds (<= 0: no dedup check and no mark)
-- ARGV[4]  order id (the deadline zset member)
-- ARGV[5]  new state blob           ARGV[6]  new status
-- ARGV[7]  "1" when the saga is finished (the record then expires after ARGV[8] seconds)
-- ARGV[8]  finished record TTL in seconds
-- ARGV[9]  deadline in ms since the epoch ("0": clear the order's deadline)
-- ARGV[10] number of commands n, then n times: id, exchange, route, body
-- then: store id, and the time the saga is parked at (ms; used when the new status is parked)
-- then: the change's time (ms), the saga's failure reason ("" while none), and the cap of
--       finished sagas kept per console index
-- KEYS[9]  the console's index of the OLD status  sagaflow:{p}:by_status:<old> (new: = KEYS[10])
-- KEYS[10] the console's index of the new status  sagaflow:{p}:by_status:<new>
-- KEYS[11] the console's index of the reason      sagaflow:{p}:by_reason:<reason> (finished)
-- KEYS[12] the same for live sagas                sagaflow:{p}:by_reason_live:<reason>
--          (compensating, stuck: never trimmed; a saga moves to KEYS[11] when it finishes)
--          (the caller names the old status's key; the version check makes sure it is the one
--          stored)
--
-- Returns one of
--   {"applied", new_version, stream_id_1, ..., stream_id_n}   (the commands' outbox entries)
--   {"duplicate", current_version}   the event id was already applied: nothing changed
--   {"conflict", current_version}    the version did not match: nothing changed
-- All or nothing: every check happens before the first write.
--
-- A batch (the events of one loop turn, one call): ARGV[1] "batch", ARGV[2] the count c, then
-- per event the number of its arguments m and those m arguments (the layout above, from
-- "apply"); KEYS are the events' 12 keys one after the other. Returns the c answers in order;
-- each event is checked and applied on its own (a conflict or duplicate changes only its
-- answer), in order, so two events of one saga see each other's effects.

local function apply_one(KEYS, ARGV)
  local mode = ARGV[1]
  local expected = tonumber(ARGV[2])
  local dedup_ttl = tonumber(ARGV[3])

  local saga = redis.call('HMGET', KEYS[1], 'version', 'status')
  local version = tonumber(saga[1]) or 0
  local old_status = saga[2]

  if dedup_ttl > 0 and redis.call('EXISTS', KEYS[2]) == 1 then
    return {'duplicate', version}
  end
  if expected >= 0 and version ~= expected then
    return {'conflict', version}
  end

  if mode ~= 'apply' then return redis.error_reply('apply.lua: unknown mode ' .. tostring(mode)) end

  -- The new saga record.
  local new_version = version + 1
  local new_status = ARGV[6]
  redis.call('HSET', KEYS[1], 'version', new_version, 'state', ARGV[5], 'status', new_status)
  if ARGV[7] == '1' then
    redis.call('EXPIRE', KEYS[1], tonumber(ARGV[8]))
  elseif version > 0 then
    redis.call('PERSIST', KEYS[1])  -- a finished saga can come back (stuck); a new one has no TTL
  end

  -- Commands into the outbox. The writer publishes them and deletes them once confirmed; an
  -- entry still there after the relay's idle time is re-sent by the partition's relay
  -- (outbox_claim.lua), so the stream id (its time) is all the bookkeeping an entry needs.
  local result = {'applied', new_version}
  local n = tonumber(ARGV[10])
  local a = 11
  for _ = 1, n do
    local id = redis.call('XADD', KEYS[3], '*', 'id', ARGV[a], 'exchange', ARGV[a + 1],
                          'route', ARGV[a + 2], 'body', ARGV[a + 3])
    result[#result + 1] = id
    a = a + 4
  end

  -- The order's next deadline.
  local deadline = tonumber(ARGV[9])
  if deadline > 0 then
    redis.call('ZADD', KEYS[4], deadline, ARGV[4])
  else
    redis.call('ZREM', KEYS[4], ARGV[4])
  end

  -- The parked-starts index: kept with the status, so a start or a cancel of a parked saga
  -- frees its place in the same step (a parked record has no TTL).
  local store = ARGV[11 + 4 * n]
  if store and store ~= '' then
    if new_status == 'parked' and old_status ~= 'parked' then
      if redis.call('ZADD', KEYS[6], tonumber(ARGV[12 + 4 * n]), ARGV[4]) == 1 then
        redis.call('HINCRBY', KEYS[7], store, 1)
      end
    elseif old_status == 'parked' and new_status ~= 'parked' then
      if redis.call('ZREM', KEYS[6], ARGV[4]) == 1 then
        if redis.call('HINCRBY', KEYS[7], store, -1) <= 0 then redis.call('HDEL', KEYS[7], store) end
      end
      redis.call('ZREM', KEYS[8], ARGV[4])
    end
  end

  -- Sagas per status (for `sagaflow status`).
  if old_status ~= new_status then
    if old_status then redis.call('HINCRBY', KEYS[5], old_status, -1) end
    redis.call('HINCRBY', KEYS[5], new_status, 1)
  end

  -- The console's indexes: each saga in the index of its status and, once it has one, of its
  -- failure reason, scored by its last change. Finished sagas are bounded per partition (the
  -- newest `cap`, none older than the record's TTL); live ones leave with their status.
  local changed_at = tonumber(ARGV[13 + 4 * n])
  if changed_at then
    local reason = ARGV[14 + 4 * n]
    local cap = tonumber(ARGV[15 + 4 * n])
    if old_status and old_status ~= new_status then redis.call('ZREM', KEYS[9], ARGV[4]) end
    redis.call('ZADD', KEYS[10], changed_at, ARGV[4])
    -- Only finished sagas are ever trimmed: a live one (running, compensating, stuck) stays
    -- listed, whatever its age, until it changes.
    local trim = {}
    if ARGV[7] == '1' then trim[#trim + 1] = KEYS[10] end
    if reason and reason ~= '' then
      if ARGV[7] == '1' then
        redis.call('ZREM', KEYS[12], ARGV[4])
        redis.call('ZADD', KEYS[11], changed_at, ARGV[4])
        trim[#trim + 1] = KEYS[11]
      else
        -- live again (a late success's compensation can take a failed saga to stuck)
        redis.call('ZREM', KEYS[11], ARGV[4])
        redis.call('ZADD', KEYS[12], changed_at, ARGV[4])
      end
    end
    for _, key in ipairs(trim) do
      redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. (changed_at - tonumber(ARGV[8]) * 1000))
      local count = redis.call('ZCARD', key)
      if count > cap then redis.call('ZREMRANGEBYRANK', key, 0, count - cap - 1) end
    end
  end

  if dedup_ttl > 0 then redis.call('SET', KEYS[2], '1', 'EX', dedup_ttl) end
  return result
end

if ARGV[1] == 'batch' then
  local count = tonumber(ARGV[2])
  local answers = {}
  local a = 3
  for i = 0, count - 1 do
    local keys = {}
    for k = 1, 12 do keys[k] = KEYS[12 * i + k] end
    local m = tonumber(ARGV[a])
    local args = {}
    for j = 1, m do args[j] = ARGV[a + j] end
    answers[i + 1] = apply_one(keys, args)
    a = a + 1 + m
  end
  return answers
end
return apply_one(KEYS, ARGV)
