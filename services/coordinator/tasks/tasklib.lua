-- Task transitions shared by the coordinator's scripts (prepended after taskcreate.lua and
-- flowlib.lua).
-- Every script using it takes the same leading KEYS and ARGV (see tasks/tasklua.py), read by
-- context():
--   KEYS[1..8]: events, agent_load, finished, dead_letters, due, task_leases,
--               attempt_deadlines, start_deadlines
--   ARGV[1..7]: prefix, now_ms, events_maxlen, backoff_initial_ms, backoff_max_ms,
--               dead_letters_maxlen, default task lease ms
-- Script-specific KEYS start at 9 and ARGV at 8.

local function context()
  return {events = KEYS[1], load = KEYS[2], finished = KEYS[3], dead = KEYS[4], due = KEYS[5],
    leases = KEYS[6], attempt_deadlines = KEYS[7], start_deadlines = KEYS[8],
    prefix = ARGV[1], now = tonumber(ARGV[2]), maxlen = ARGV[3],
    backoff_ms = tonumber(ARGV[4]), backoff_max_ms = tonumber(ARGV[5]),
    dead_maxlen = ARGV[6], lease_ms = tonumber(ARGV[7])}
end

local function load_task(C, task_id)
  local tk = C.prefix .. K_TASK .. task_id
  local v = redis.call('HMGET', tk, unpack(TASK_LOADED_FIELDS))
  local t = {key = tk, id = task_id}
  for i = 1, #TASK_LOADED_FIELDS do t[TASK_LOADED_FIELDS[i]] = v[i] end
  t.state = tonumber(t.state)
  return t
end

local function is_live(t)
  return t.state == TASK_STATE_ASSIGNED or t.state == TASK_STATE_RUNNING
end

local function move_index(C, t, to)
  redis.call('ZREM', C.prefix .. K_TASKS_BY_STATE .. t.state, t.id)
  redis.call('ZADD', C.prefix .. K_TASKS_BY_STATE .. to, t.seq, t.id)
end

-- Lease of a new attempt: the task's heartbeat timeout, else the default.
local function lease_ms(C, t)
  local ms = tonumber(t.hb_ms) or 0
  if ms <= 0 then ms = C.lease_ms end
  return ms
end

-- Free the agent slot an attempt holds, once. With `held_later` the caller writes
-- `held = ''` itself, with the task's next HSET in the same script (one command less).
local function release_slot(C, t, held_later)
  if t.held and t.held ~= '' then
    if tonumber(redis.call('HINCRBY', C.load, t.held, -1)) < 0 then
      redis.call('HSET', C.load, t.held, 0)
    end
    if not held_later then redis.call('HSET', t.key, 'held', '') end
    t.held = ''
    if has(t.ckey) then release_key(C.prefix, t) end
  end
end

-- The attempt is over: it no longer needs a lease, a start-to-close deadline or a progress
-- deadline (assign.lua sets those only for a task with the timeout).
local function end_attempt(C, t)
  redis.call('ZREM', C.leases, t.id)
  if (tonumber(t.timeout_ms) or 0) > 0 then
    redis.call('ZREM', C.attempt_deadlines, t.id)
  end
  if (tonumber(t.progress_ms) or 0) > 0 then
    redis.call('ZREM', C.prefix .. K_PROGRESS_DEADLINES, t.id)
  end
end

-- The task no longer waits to start (submit.lua sets a deadline only for a positive s2s_ms).
local function clear_start_deadline(C, t)
  if (tonumber(t.s2s_ms) or 0) > 0 then
    redis.call('ZREM', C.start_deadlines, t.id)
  end
end

local function event_of(t, type, state, attempt, agent_id, message)
  return {ms = 0, type = type, task_id = t.id, workflow_id = t.workflow_id, agent_id = agent_id,
    capability = t.capability, state = state, attempt = attempt, message = message,
    step_id = t.step_id, tenant = t.tenant}
end

local function emit(C, ev)
  ev.ms = C.now
  emit_event(C.events, C.maxlen, ev)
end

-- The current attempt reported that it runs (STARTED, or its first PROGRESS report).
local function mark_started(C, t, ev, start_ms)
  if t.state == TASK_STATE_ASSIGNED then
    redis.call('HSET', t.key, 'state', TASK_STATE_RUNNING, 'start_ms', start_ms)
    move_index(C, t, TASK_STATE_RUNNING)
    t.state = TASK_STATE_RUNNING
    ev.type, ev.state = EVENT_TYPE_TASK_STARTED, TASK_STATE_RUNNING
    emit(C, ev)
  end
end

-- Fields a task keeps after it ends only when they say something (create_task does not write
-- the NewTask ones at their defaults; a task created by an earlier version still has them):
-- at their defaults they read the same when absent (every reader, Lua or Python, takes a
-- missing field as its default), and dropping them takes a finished task's hash from about 744 to about 490 bytes (the
-- finished tasks kept for the retention period are most of Redis's memory). `fair_tag` is
-- queue bookkeeping: a task queued again (a dead letter retried) takes a fresh turn. `held`
-- goes only once the attempt's slot is released: a cancelled live attempt keeps it until its
-- agent reports or its lease runs out. A SUCCEEDED task drops its attempt `token` too: no
-- attempt of it can run again, and complete.lua and progress.lua take a late report for it
-- as late without comparing tokens (spawn.lua refuses it as it refuses a wrong token). `gone`:
-- fields the caller already knows are at their defaults (finish's empty result and error).
local function drop_defaults(t, gone)
  local n = #gone
  -- Written out, not looped over a list: this runs for every task that ends.
  if t.backoff_ms == '0' then n = n + 1; gone[n] = 'backoff_ms' end
  if t.backoff_max_ms == '0' then n = n + 1; gone[n] = 'backoff_max_ms' end
  if t.hb_ms == '0' then n = n + 1; gone[n] = 'hb_ms' end
  if t.timeout_ms == '0' then n = n + 1; gone[n] = 'timeout_ms' end
  if t.s2s_ms == '0' then n = n + 1; gone[n] = 's2s_ms' end
  if t.progress_ms == '0' then n = n + 1; gone[n] = 'progress_ms' end
  if t.due_ms == '0' then n = n + 1; gone[n] = 'due_ms' end
  if t.climit == '0' then n = n + 1; gone[n] = 'climit' end
  if t.cstrategy == '0' then n = n + 1; gone[n] = 'cstrategy' end
  if t.workflow_id == '' then n = n + 1; gone[n] = 'workflow_id' end
  if t.step_id == '' then n = n + 1; gone[n] = 'step_id' end
  if t.tenant == '' then n = n + 1; gone[n] = 'tenant' end
  if t.ckey == '' then n = n + 1; gone[n] = 'ckey' end
  if t.rate == '' then n = n + 1; gone[n] = 'rate' end
  if t.request_id == '' then n = n + 1; gone[n] = 'request_id' end
  if t.held == '' then n = n + 1; gone[n] = 'held' end
  if t.waiting == '' then n = n + 1; gone[n] = 'waiting' end
  if t.labels == '{}' then n = n + 1; gone[n] = 'labels' end
  if t.fair_tag then n = n + 1; gone[n] = 'fair_tag' end
  if t.state == TASK_STATE_SUCCEEDED and (t.held or '') == '' then
    -- Nothing re-queues or re-indexes a SUCCEEDED task: its queue order (seq, priority, its
    -- fair turns' key and weight at their defaults) is spent. Readers take a missing
    -- fairness key as the tenant's and a missing weight as 1 (tasks/model.py).
    if t.token then n = n + 1; gone[n] = 'token' end
    if t.seq then n = n + 1; gone[n] = 'seq' end
    if t.priority == '0' then n = n + 1; gone[n] = 'priority' end
    if t.fairness_weight == '1' then n = n + 1; gone[n] = 'fairness_weight' end
    if t.fairness_key and t.fairness_key == ((t.tenant and t.tenant ~= '') and t.tenant
        or DEFAULT_TENANT) then
      n = n + 1; gone[n] = 'fairness_key'
    end
  end
  if n > 0 then redis.call('HDEL', t.key, unpack(gone, 1, n)) end
end

-- Enter a terminal state, with its bookkeeping (indexes, retention, workflow notice). A task
-- with output gets an `end` entry in its output stream, so followers (the gateway's
-- StreamTaskOutput) wake up and stop; retention deletes the stream with the hash (expire.lua).
-- A task that spawned children and ends in any state but SUCCEEDED is named on the
-- ended-parents stream: a coordinator cancels its unfinished children (children.py).
local function finish(C, t, to, fields)
  -- An empty result or error is not written but cleared (an earlier attempt's error may be
  -- there): every reader takes a missing one as empty.
  local set, empty = {'state', to, 'end_ms', C.now}, {}
  fields = fields or {}
  for i = 1, #fields, 2 do
    local f, v = fields[i], fields[i + 1]
    if v == '' and (f == 'result' or f == 'error') then
      empty[#empty + 1] = f
    else
      local k = #set
      set[k + 1], set[k + 2] = f, v
    end
  end
  redis.call('HSET', t.key, unpack(set))
  move_index(C, t, to)
  t.state = to
  redis.call('ZADD', C.finished, C.now, t.id)
  clear_start_deadline(C, t)
  notify_workflow(C.prefix, t.workflow_id, t.step_id, t.id, to)
  if t.output_bytes then
    redis.call('XADD', C.prefix .. K_OUTPUT .. t.id, '*', 'end', to)
  end
  drop_defaults(t, empty)
  if t.children and to ~= TASK_STATE_SUCCEEDED then  -- spawn.lua marks a parent
    redis.call('XADD', C.prefix .. K_ENDED_PARENTS, 'MAXLEN', '~', C.maxlen, '*',
      'task_id', t.id)
  end
end

-- Record a failed attempt, then retry it after a backoff (or at once when `immediate`), or,
-- past the attempt budget or when not retryable, fail the task and dead-letter it.
-- Returns 'retry' or 'failed'.
local function fail_attempt(C, t, attempt, agent_id, err, retryable, jitter, immediate)
  local errors = cjson.decode(t.errors or '[]')
  errors[#errors + 1] = {attempt = attempt, agent_id = agent_id, error = err, ms = C.now}
  while #errors > 20 do table.remove(errors, 1) end
  local errors_json = cjson.encode(errors)
  t.errors = errors_json
  redis.call('HSET', t.key, 'error', err, 'errors', errors_json)
  local used = attempt - (tonumber(t.attempt_base) or 0)
  if retryable and used < tonumber(t.max_attempts) then
    move_index(C, t, TASK_STATE_PENDING)
    redis.call('HSET', t.key, 'state', TASK_STATE_PENDING)
    t.state = TASK_STATE_PENDING
    if immediate then
      enqueue(C.prefix, t)
    else
      local initial = tonumber(t.backoff_ms) or 0
      if initial <= 0 then initial = C.backoff_ms end
      local cap = tonumber(t.backoff_max_ms) or 0
      if cap <= 0 then cap = C.backoff_max_ms end
      local delay = math.min(cap, initial * 2 ^ (used - 1))
      delay = math.floor(delay / 2 + jitter * delay / 2)
      redis.call('ZADD', C.due, C.now + delay, t.id)
    end
    return 'retry'
  end
  finish(C, t, TASK_STATE_FAILED)
  redis.call('XADD', C.dead, 'MAXLEN', '~', C.dead_maxlen, '*', 'task_id', t.id,
    'attempt', attempt, 'agent_id', agent_id, 'capability', t.capability, 'error', err,
    'errors', errors_json, 'tenant', t.tenant or '')
  return 'failed'
end

-- Emit the events of a fail_attempt outcome.
local function emit_failure(C, t, outcome, attempt, agent_id, err)
  if outcome == 'retry' then
    emit(C, event_of(t, EVENT_TYPE_TASK_RETRYING, TASK_STATE_PENDING, attempt, agent_id, err))
  else
    emit(C, event_of(t, EVENT_TYPE_TASK_FAILED, TASK_STATE_FAILED, attempt, agent_id, err))
    emit(C, event_of(t, EVENT_TYPE_TASK_DEAD_LETTERED, TASK_STATE_FAILED, attempt, agent_id, err))
  end
end

-- Lose an in-flight attempt (its agent died, its lease or deadline passed): free its slot and
-- retry or fail it. `event_type` (may be nil) records the loss itself.
-- Returns 'retry', 'failed', or nil when the attempt is not current (nothing changes then,
-- except that a slot still held by a finished attempt is freed).
local function lose_attempt(C, task_id, attempt, why, event_type, jitter, immediate)
  local t = load_task(C, task_id)
  if not t.state then return nil end
  if not is_live(t) or tonumber(t.attempt) ~= tonumber(attempt) then
    if tonumber(t.attempt) == tonumber(attempt) then
      release_slot(C, t)
      end_attempt(C, t)
    end
    return nil
  end
  local agent_id = (t.held and t.held ~= '') and t.held or (t.agent_id or '')
  release_slot(C, t)
  end_attempt(C, t)
  if event_type then
    emit(C, event_of(t, event_type, t.state, attempt, agent_id, why))
  end
  local outcome = fail_attempt(C, t, tonumber(attempt), agent_id, why, true, jitter, immediate)
  emit_failure(C, t, outcome, tonumber(attempt), agent_id, why)
  return outcome
end

-- XACK and XDEL the handled entries of a stream (in chunks: unpack has a stack limit).
local function ack_and_delete(stream, group, entry_ids)
  for i = 1, #entry_ids, 500 do
    local chunk = {unpack(entry_ids, i, math.min(i + 499, #entry_ids))}
    redis.call('XACK', stream, group, unpack(chunk))
    redis.call('XDEL', stream, unpack(chunk))
  end
end
