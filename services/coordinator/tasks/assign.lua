-- Deliver a batch of (task, agent) assignments computed by the scheduler, each only if it
-- still holds: the task is PENDING at the expected attempt and the agent is ONLINE with a free
-- slot. Each applied assignment takes a slot, marks the task ASSIGNED with a fresh attempt
-- token, puts the attempt under a lease (renewed by the agent's heartbeats), its
-- start-to-close and progress deadlines, and appends the prepared TaskEnvelope to the agent's inbox.
-- KEYS: the tasklib context (1..8)
-- ARGV: the tasklib context (1..7), then n, then per assignment an ASSIGN_ROW, read by its
--   ASSIGN_ROW_* indexes (scripts.py
--   AssignRow: task_id, agent_id, attempt, token, envelope)
-- Returns one code per assignment: 1 applied, 0 task no longer pending, 2 agent not online,
-- 3 agent has no free slot, 4 parked on its full concurrency key, 5 cancelled by its
-- concurrency strategy, 6 parked in the due set by a rate limit (flowgate.lua).
local C = context()
local n = tonumber(ARGV[8])
local out = {}
-- Agents met in this call: {online, max_concurrency, load}; nothing else changes them meanwhile.
local agents = {}
for i = 0, n - 1 do
  local b = 8 + i * ASSIGN_ROW_WIDTH
  local task_id, agent_id, attempt, token, envelope = ARGV[b + ASSIGN_ROW_TASK_ID],
    ARGV[b + ASSIGN_ROW_AGENT_ID], tonumber(ARGV[b + ASSIGN_ROW_ATTEMPT]),
    ARGV[b + ASSIGN_ROW_TOKEN], ARGV[b + ASSIGN_ROW_ENVELOPE]
  local t = load_task(C, task_id)
  local code = 1
  local a = agents[agent_id]
  local ok, take_or_code = false, nil
  if t.state ~= TASK_STATE_PENDING or tonumber(t.attempt) ~= attempt - 1 then
    code = 0
  else
    if not a then
      local v = redis.call('HMGET', C.prefix .. K_AGENT .. agent_id, 'state', 'max_concurrency')
      a = {online = tonumber(v[1]) == AGENT_STATE_ONLINE, max = tonumber(v[2]),
        load = tonumber(redis.call('HGET', C.load, agent_id) or '0')}
      agents[agent_id] = a
    end
    if not a.online then
      code = 2
    elseif a.load >= a.max then
      code = 3
    else
      ok, take_or_code = flow_gate(C, t)
      if not ok then
        code = take_or_code
      elseif not dequeue(C.prefix, t, true) then
        code = 0
      end
    end
  end
  if code == 1 then
    flow_take(C, t, take_or_code)
    a.load = tonumber(redis.call('HINCRBY', C.load, agent_id, 1))
    redis.call('HSET', t.key, 'state', TASK_STATE_ASSIGNED, 'attempt', attempt,
      'agent_id', agent_id, 'token', token, 'held', agent_id, 'assign_ms', C.now, 'start_ms', '')
    if attempt > 1 then
      redis.call('HDEL', t.key, 'progress')  -- an earlier attempt's progress is not this one's
    end
    move_index(C, t, TASK_STATE_ASSIGNED)
    redis.call('ZADD', C.leases, C.now + lease_ms(C, t), task_id)
    clear_start_deadline(C, t)
    -- The agent enforces attempt_timeout from when it starts the handler and reports the
    -- failure itself; the coordinator's deadline is the backstop, a little later.
    local timeout = tonumber(t.timeout_ms) or 0
    if timeout > 0 then
      redis.call('ZADD', C.attempt_deadlines, C.now + timeout + math.min(timeout, 1000), task_id)
    end
    -- Each PROGRESS report of the attempt moves this deadline on (progress.lua).
    local progress_ms = tonumber(t.progress_ms) or 0
    if progress_ms > 0 then
      redis.call('ZADD', C.prefix .. K_PROGRESS_DEADLINES, C.now + progress_ms, task_id)
    end
    redis.call('XADD', C.prefix .. K_INBOX .. agent_id, '*', 'envelope', envelope)
    emit(C, event_of(t, EVENT_TYPE_TASK_ASSIGNED, TASK_STATE_ASSIGNED, attempt, agent_id))
  end
  out[#out + 1] = code
end
return out
