-- Apply a batch of TaskResults read from the results stream, then XACK and XDEL each entry.
-- A result is applied only for the task's current attempt with that attempt's token; anything
-- else (stale attempt, wrong token, duplicate, unknown task) is recorded as RESULT_IGNORED.
-- A failure is retried after a capped exponential backoff with jitter (via the due set) until
-- max_attempts; then the task is FAILED and written to the dead-letter stream.
-- KEYS: events, results, due, dead_letters, agent_load, finished
-- ARGV: prefix, now_ms, events_maxlen, group, backoff_initial_ms, backoff_max_ms, n,
--   then per result 11 values: entry_id, task_id, attempt, token, agent_id, outcome, result,
--   error, start_ms, end_ms, jitter (0..1)
-- Returns {applied, ignored, retried, failed}.
local prefix, now, maxlen, group = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local initial, cap_ms, n = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local applied, ignored, retried, failed = 0, 0, 0, 0

local function move_index(task_id, seq, from, to)
  redis.call('ZREM', prefix .. 'tasks:' .. from, task_id)
  redis.call('ZADD', prefix .. 'tasks:' .. to, seq, task_id)
end

local function release_slot(tk, held)
  if held and held ~= '' then
    if tonumber(redis.call('HINCRBY', KEYS[5], held, -1)) < 0 then
      redis.call('HSET', KEYS[5], held, 0)
    end
    redis.call('HSET', tk, 'held', '')
  end
end

for i = 0, n - 1 do
  local b = 8 + i * 11
  local entry_id, task_id, attempt, token = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2]), ARGV[b + 3]
  local agent_id, outcome, result, err = ARGV[b + 4], tonumber(ARGV[b + 5]), ARGV[b + 6], ARGV[b + 7]
  local start_ms, end_ms, jitter = ARGV[b + 8], ARGV[b + 9], tonumber(ARGV[b + 10])
  redis.call('XACK', KEYS[2], group, entry_id)
  redis.call('XDEL', KEYS[2], entry_id)
  local tk = prefix .. 'task:' .. task_id
  local t = redis.call('HMGET', tk, 'state', 'attempt', 'token', 'capability', 'seq',
    'max_attempts', 'held', 'workflow_id', 'priority', 'step_id')
  local state = tonumber(t[1])
  local ev = {ms = now, task_id = task_id, workflow_id = t[8], agent_id = agent_id,
    capability = t[4], attempt = attempt, step_id = t[10]}
  local why = nil
  if not state then
    why = 'unknown task'
  elseif tonumber(t[2]) ~= attempt then
    why = 'result for superseded attempt ' .. attempt .. ' (current ' .. t[2] .. ')'
  elseif t[3] ~= token then
    why = 'wrong attempt token'
  elseif outcome == TASK_OUTCOME_STARTED then
    if state == TASK_STATE_ASSIGNED then
      redis.call('HSET', tk, 'state', TASK_STATE_RUNNING, 'start_ms', start_ms)
      move_index(task_id, t[5], state, TASK_STATE_RUNNING)
      ev.type, ev.state = EVENT_TYPE_TASK_STARTED, TASK_STATE_RUNNING
      emit_event(KEYS[1], maxlen, ev)
    end
  elseif state ~= TASK_STATE_ASSIGNED and state ~= TASK_STATE_RUNNING then
    -- The attempt already ended (or was cancelled): free its slot once, apply nothing.
    release_slot(tk, t[7])
    why = 'duplicate result (task already ' .. state .. ')'
  else
    release_slot(tk, t[7])
    applied = applied + 1
    local to
    if outcome == TASK_OUTCOME_SUCCEEDED then
      to = TASK_STATE_SUCCEEDED
      redis.call('HSET', tk, 'state', to, 'result', result, 'error', '', 'start_ms', start_ms,
        'end_ms', now)
      ev.type = EVENT_TYPE_TASK_SUCCEEDED
    elseif outcome == TASK_OUTCOME_CANCELLED then
      to = TASK_STATE_CANCELLED
      redis.call('HSET', tk, 'state', to, 'error', err, 'end_ms', now)
      ev.type, ev.message = EVENT_TYPE_TASK_CANCELLED, err
    elseif outcome == TASK_OUTCOME_FAILED and attempt < tonumber(t[6]) then
      to = TASK_STATE_PENDING
      local delay = math.min(cap_ms, initial * 2 ^ (attempt - 1))
      delay = math.floor(delay / 2 + jitter * delay / 2)
      redis.call('HSET', tk, 'state', to, 'error', err, 'start_ms', start_ms)
      redis.call('ZADD', KEYS[3], now + delay, task_id)
      ev.type, ev.message = EVENT_TYPE_TASK_RETRYING, err
      retried = retried + 1
    else
      to = TASK_STATE_FAILED
      redis.call('HSET', tk, 'state', to, 'error', err, 'start_ms', start_ms, 'end_ms', now)
      redis.call('XADD', KEYS[4], '*', 'task_id', task_id, 'attempt', attempt,
        'agent_id', agent_id, 'capability', t[4], 'error', err)
      ev.type, ev.message = EVENT_TYPE_TASK_FAILED, err
      failed = failed + 1
    end
    move_index(task_id, t[5], state, to)
    if to ~= TASK_STATE_PENDING then
      redis.call('ZADD', KEYS[6], now, task_id)
      notify_workflow(prefix, t[8], t[10], task_id, to)
    end
    ev.state = to
    emit_event(KEYS[1], maxlen, ev)
    if to == TASK_STATE_FAILED then
      ev.type = EVENT_TYPE_TASK_DEAD_LETTERED
      emit_event(KEYS[1], maxlen, ev)
    end
  end
  if why then
    ignored = ignored + 1
    ev.type, ev.message, ev.state = EVENT_TYPE_RESULT_IGNORED, why, state
    emit_event(KEYS[1], maxlen, ev)
  end
end
return {applied, ignored, retried, failed}
