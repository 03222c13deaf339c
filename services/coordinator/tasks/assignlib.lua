-- The assignment of one task to one agent (prepended after flowgate.lua), shared by assign.lua
-- (a scheduling pass's pairings) and submit.lua (eager dispatch at submission).

-- Apply the ASSIGN_ROW at ARGV offset `b` (task_id, agent_id, attempt, token, envelope) only if
-- it still holds: the task is PENDING at the expected attempt and the agent is ONLINE with a
-- free slot, and flow control lets the task go. The assignment takes a slot, marks the task
-- ASSIGNED with the fresh attempt token, puts the attempt under a lease (renewed by the agent's
-- heartbeats), its start-to-close and progress deadlines, and appends the prepared TaskEnvelope
-- to the agent's inbox.
-- `agents` holds the agents met in this script call ({online, max, load}: nothing else changes
-- them meanwhile). With `probe`, a task flow control holds back is left in its queue as it was
-- (a scheduling pass parks it); without, it is parked (flowgate.lua). A `created` task
-- (submit.lua: created in this call by create_task, which returns it as load_task would read
-- it, in no queue nor by-state index yet) is neither read nor dequeued.
-- Returns 1 applied, 0 task no longer pending, 2 agent not online, 3 agent has no free slot,
-- 4 parked on its full concurrency key, 5 cancelled by its concurrency strategy, 6 parked in the
-- due set by a rate limit (with `probe`, 4 and 6 mean it would have been).
local function assign_task(C, agents, b, probe, created)
  local task_id, agent_id = ARGV[b + ASSIGN_ROW_TASK_ID], ARGV[b + ASSIGN_ROW_AGENT_ID]
  local attempt = tonumber(ARGV[b + ASSIGN_ROW_ATTEMPT])
  local unqueued = created ~= nil
  local t = created or load_task(C, task_id)
  if t.state ~= TASK_STATE_PENDING or tonumber(t.attempt) ~= attempt - 1 then return 0 end
  local a = agents[agent_id]
  if not a then
    local v = redis.call('HMGET', C.prefix .. K_AGENT .. agent_id, 'state', 'max_concurrency')
    a = {online = tonumber(v[1]) == AGENT_STATE_ONLINE, max = tonumber(v[2]),
      load = tonumber(redis.call('HGET', C.load, agent_id) or '0')}
    agents[agent_id] = a
  end
  if not a.online then return 2 end
  if a.load >= a.max then return 3 end
  local ok, take_or_code = flow_gate(C, t, probe)
  if not ok then return take_or_code end
  if not unqueued and not dequeue(C.prefix, t, true) then return 0 end
  flow_take(C, t, take_or_code)
  a.load = tonumber(redis.call('HINCRBY', C.load, agent_id, 1))
  redis.call('HSET', t.key, 'state', TASK_STATE_ASSIGNED, 'attempt', attempt,
    'agent_id', agent_id, 'token', ARGV[b + ASSIGN_ROW_TOKEN], 'held', agent_id,
    'assign_ms', C.now, 'start_ms', '')
  if attempt > 1 then
    redis.call('HDEL', t.key, 'progress')  -- an earlier attempt's progress is not this one's
  end
  if unqueued then
    redis.call('ZADD', C.prefix .. K_TASKS_BY_STATE .. TASK_STATE_ASSIGNED, t.seq, task_id)
  else
    move_index(C, t, TASK_STATE_ASSIGNED)
  end
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
  redis.call('XADD', C.prefix .. K_INBOX .. agent_id, '*', 'envelope', ARGV[b + ASSIGN_ROW_ENVELOPE])
  emit(C, event_of(t, EVENT_TYPE_TASK_ASSIGNED, TASK_STATE_ASSIGNED, attempt, agent_id))
  return 1
end
