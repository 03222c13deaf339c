-- Flow control at assignment (prepended after tasklib.lua to assign.lua and supersede.lua):
-- concurrency keys and rate limits (docs/flow-control.md).

local CODE_PARKED_ON_KEY, CODE_CANCELLED_BY_KEY, CODE_RATE_LIMITED = 4, 5, 6

local function flow_event(C, t, type, message, ckey, rate_limit)
  local ev = event_of(t, type, t.state, tonumber(t.attempt), '', message)
  ev.ckey, ev.rate_limit = ckey, rate_limit
  emit(C, ev)
end

-- Cancel a task by its concurrency strategy. A live attempt keeps its agent slot and its
-- place on the key until its agent reports back or its lease runs out (as cancel.lua).
local function cancel_by_key(C, t, why)
  if t.state == TASK_STATE_PENDING then
    dequeue(C.prefix, t, false)
    redis.call('ZREM', C.due, t.id)
    unpark(C.prefix, t)
  end
  redis.call('ZREM', C.attempt_deadlines, t.id)
  finish(C, t, TASK_STATE_CANCELLED, {'error', why})
  flow_event(C, t, EVENT_TYPE_TASK_CONCURRENCY_CANCELLED, why, t.ckey, nil)
end

-- CANCEL_IN_PROGRESS: the newest wins. Cancel the holders and waiters of t's key that were
-- submitted before t. Returns how many were cancelled.
local function supersede(C, t)
  local why = 'superseded by task ' .. t.id .. ' on concurrency key ' .. t.ckey
  local n = 0
  local ids = redis.call('SMEMBERS', C.prefix .. K_CONC_HOLDERS .. t.ckey)
  for _, id in ipairs(redis.call('ZRANGE', C.prefix .. K_CONC_WAIT .. t.ckey, 0, -1)) do
    ids[#ids + 1] = id
  end
  for _, id in ipairs(ids) do
    local h = load_task(C, id)
    if h.state and (is_live(h) or h.state == TASK_STATE_PENDING)
        and tonumber(h.seq) < tonumber(t.seq) then
      cancel_by_key(C, h, why)
      n = n + 1
    end
  end
  return n
end

-- Take t out of its pending queue to park it; false when another pass took it first.
local function leave_pending(C, t)
  return dequeue(C.prefix, t, false)
end

-- The concurrency key of t: nil when it has a free place, else the assign code (with `probe`,
-- the code it would park t with, changing nothing).
local function gate_key(C, t, probe)
  local limit = tonumber(t.climit) or 1
  if redis.call('SCARD', C.prefix .. K_CONC_HOLDERS .. t.ckey) < limit then return nil end
  if probe then return CODE_PARKED_ON_KEY end
  local strategy = tonumber(t.cstrategy)
  if strategy == CONCURRENCY_STRATEGY_CANCEL_IN_PROGRESS then
    supersede(C, t)  -- the cancelled holders free their places as their attempts end
  end
  if not leave_pending(C, t) then return 0 end
  if strategy == CONCURRENCY_STRATEGY_CANCEL_NEWEST then
    cancel_by_key(C, t, 'concurrency key ' .. t.ckey .. ' is full (limit ' .. limit .. ')')
    return CODE_CANCELLED_BY_KEY
  end
  redis.call('ZADD', C.prefix .. K_CONC_WAIT .. t.ckey, pending_score(t.priority, t.seq), t.id)
  local why = 'waiting on concurrency key ' .. t.ckey .. ' (limit ' .. limit .. ')'
  redis.call('HSET', t.key, 'waiting', why)
  flow_event(C, t, EVENT_TYPE_TASK_CONCURRENCY_WAITING, why, t.ckey, nil)
  return CODE_PARKED_ON_KEY
end

-- Fixed windows aligned on the epoch: "<limit> <window ms>" and "<window start> <used>".
-- Returns nil and the new usage per limit when every limit of t has room, else the assign
-- code after parking t in the due set until the window that blocks it ends (with `probe`, the
-- code alone, changing nothing).
local function gate_rate(C, t, probe)
  local units = cjson.decode(t.rate)
  local limits, usage = C.prefix .. K_RATE_LIMITS, C.prefix .. K_RATE_USAGE
  local take, until_ms, blocking = {}, 0, nil
  for name, n in pairs(units) do
    local def = redis.call('HGET', limits, name)
    if def then  -- a deleted limit no longer holds anything back
      local limit, window = string.match(def, '(%d+) (%d+)')
      limit, window = tonumber(limit), tonumber(window)
      local start = C.now - C.now % window
      local used = 0
      local u = redis.call('HGET', usage, name)
      if u then
        local ustart, uused = string.match(u, '(%d+) (%d+)')
        if tonumber(ustart) == start then used = tonumber(uused) end
      end
      if used + n > limit then
        if start + window > until_ms then until_ms, blocking = start + window, name end
      else
        take[name] = start .. ' ' .. (used + n)
      end
    end
  end
  if until_ms == 0 then return nil, take end
  if probe then return CODE_RATE_LIMITED end
  if not leave_pending(C, t) then return 0 end
  redis.call('ZADD', C.due, until_ms, t.id)
  for name, _ in pairs(units) do
    redis.call('ZADD', C.prefix .. K_RATE_WAITING .. name, until_ms, t.id)
  end
  local why = 'waiting on rate limit ' .. blocking .. ' until ' .. until_ms
  redis.call('HSET', t.key, 'waiting', why)
  flow_event(C, t, EVENT_TYPE_TASK_RATE_LIMITED, why, nil, blocking)
  return CODE_RATE_LIMITED
end

-- Whether t may be assigned now (true, and what to take on assignment), else its assign code;
-- with `probe` a task held back is not parked (nor its key's older holders superseded).
-- Tasks without a key or rate units cost nothing here.
local function flow_gate(C, t, probe)
  if has(t.ckey) then
    local code = gate_key(C, t, probe)
    if code then return false, code end
  end
  if has(t.rate) then
    local code, take = gate_rate(C, t, probe)
    if code then return false, code end
    return true, take
  end
  return true, nil
end

-- The assignment of t is applied: it holds its key and takes its rate units.
local function flow_take(C, t, take)
  if has(t.ckey) then
    redis.call('SADD', C.prefix .. K_CONC_HOLDERS .. t.ckey, t.id)
  end
  if take then
    for name, usage in pairs(take) do
      redis.call('HSET', C.prefix .. K_RATE_USAGE, name, usage)
    end
    for name, _ in pairs(cjson.decode(t.rate)) do
      redis.call('ZREM', C.prefix .. K_RATE_WAITING .. name, t.id)
    end
  end
  if has(t.ckey) or take then redis.call('HSET', t.key, 'waiting', '') end
end
