-- Task transitions shared by the coordinator's scripts. Each script sets up a context C:
-- C.prefix, C.now, C.maxlen, and key names C.events, C.load, C.finished, C.dead, C.due,
-- C.leases, C.attempt_deadlines, C.start_deadlines; C.backoff_ms and C.backoff_max_ms are
-- the defaults for tasks that set none.

local TASK_FIELDS = {'state', 'attempt', 'token', 'capability', 'seq', 'max_attempts', 'held',
  'workflow_id', 'priority', 'step_id', 'backoff_ms', 'backoff_max_ms', 'errors', 'agent_id'}

local function load_task(C, task_id)
  local tk = C.prefix .. 'task:' .. task_id
  local v = redis.call('HMGET', tk, unpack(TASK_FIELDS))
  local t = {key = tk, id = task_id}
  for i, name in ipairs(TASK_FIELDS) do t[name] = v[i] end
  t.state = tonumber(t.state)
  return t
end

local function pending_score(priority, seq)
  return (100 - tonumber(priority)) * 17592186044416 + tonumber(seq)
end

local function move_index(C, t, to)
  redis.call('ZREM', C.prefix .. 'tasks:' .. t.state, t.id)
  redis.call('ZADD', C.prefix .. 'tasks:' .. to, t.seq, t.id)
end

-- Free the agent slot an attempt holds, once.
local function release_slot(C, t)
  if t.held and t.held ~= '' then
    if tonumber(redis.call('HINCRBY', C.load, t.held, -1)) < 0 then
      redis.call('HSET', C.load, t.held, 0)
    end
    redis.call('HSET', t.key, 'held', '')
    t.held = ''
  end
end

-- The attempt is over: it no longer needs a lease or a start-to-close deadline.
local function end_attempt(C, t)
  redis.call('ZREM', C.leases, t.id)
  redis.call('ZREM', C.attempt_deadlines, t.id)
end

local function event_of(t, type, state, attempt, agent_id, message)
  return {ms = 0, type = type, task_id = t.id, workflow_id = t.workflow_id, agent_id = agent_id,
    capability = t.capability, state = state, attempt = attempt, message = message,
    step_id = t.step_id}
end

local function emit(C, ev)
  ev.ms = C.now
  emit_event(C.events, C.maxlen, ev)
end

-- Enter a terminal state (from a live or pending state), with its bookkeeping.
local function finish(C, t, to, fields)
  redis.call('HSET', t.key, 'state', to, 'end_ms', C.now, unpack(fields or {}))
  move_index(C, t, to)
  t.state = to
  redis.call('ZADD', C.finished, C.now, t.id)
  redis.call('ZREM', C.start_deadlines, t.id)
  notify_workflow(C.prefix, t.workflow_id, t.step_id, t.id, to)
end

-- Record a failed attempt, then retry it after a backoff (or at once when delay is 0), or,
-- past the attempt budget or when not retryable, fail the task and dead-letter it.
-- Returns 'retry' or 'failed'.
local function fail_attempt(C, t, attempt, agent_id, err, retryable, jitter, immediate)
  local errors = cjson.decode(t.errors or '[]')
  errors[#errors + 1] = {attempt = attempt, agent_id = agent_id, error = err, ms = C.now}
  local errors_json = cjson.encode(errors)
  redis.call('HSET', t.key, 'error', err, 'errors', errors_json)
  if retryable and attempt < tonumber(t.max_attempts) then
    move_index(C, t, TASK_STATE_PENDING)
    redis.call('HSET', t.key, 'state', TASK_STATE_PENDING)
    t.state = TASK_STATE_PENDING
    if immediate then
      redis.call('ZADD', C.prefix .. 'pending:' .. t.capability, pending_score(t.priority, t.seq), t.id)
    else
      local initial = tonumber(t.backoff_ms) or 0
      if initial <= 0 then initial = C.backoff_ms end
      local cap = tonumber(t.backoff_max_ms) or 0
      if cap <= 0 then cap = C.backoff_max_ms end
      local delay = math.min(cap, initial * 2 ^ (attempt - 1))
      delay = math.floor(delay / 2 + jitter * delay / 2)
      redis.call('ZADD', C.due, C.now + delay, t.id)
    end
    return 'retry'
  end
  finish(C, t, TASK_STATE_FAILED)
  redis.call('XADD', C.dead, 'MAXLEN', '~', C.dead_maxlen, '*', 'task_id', t.id,
    'attempt', attempt, 'agent_id', agent_id, 'capability', t.capability, 'error', err,
    'errors', errors_json)
  return 'failed'
end

-- Lose an in-flight attempt (its agent died, its lease or deadline passed): free its slot and
-- retry or fail it. Returns 'retry', 'failed', or nil when the attempt is not current.
local function lose_attempt(C, task_id, attempt, why, event_type, jitter, immediate)
  local t = load_task(C, task_id)
  if t.state ~= TASK_STATE_ASSIGNED and t.state ~= TASK_STATE_RUNNING then return nil end
  if tonumber(t.attempt) ~= tonumber(attempt) then return nil end
  local agent_id = t.held ~= '' and t.held or (t.agent_id or '')
  release_slot(C, t)
  end_attempt(C, t)
  emit(C, event_of(t, event_type, t.state, attempt, agent_id, why))
  local outcome = fail_attempt(C, t, tonumber(attempt), agent_id, why, true, jitter, immediate)
  if outcome == 'retry' then
    emit(C, event_of(t, EVENT_TYPE_TASK_RETRYING, TASK_STATE_PENDING, attempt, agent_id, why))
  else
    emit(C, event_of(t, EVENT_TYPE_TASK_FAILED, TASK_STATE_FAILED, attempt, agent_id, why))
    emit(C, event_of(t, EVENT_TYPE_TASK_DEAD_LETTERED, TASK_STATE_FAILED, attempt, agent_id, why))
  end
  return outcome
end
