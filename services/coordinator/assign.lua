-- Deliver a batch of (task, agent) assignments computed by the scheduler, each only if it
-- still holds: the task is PENDING at the expected attempt and the agent is ONLINE with a free
-- slot. Each applied assignment takes a slot, marks the task ASSIGNED with a fresh attempt
-- token, and appends the prepared TaskEnvelope to the agent's inbox.
-- KEYS: events, agent_load
-- ARGV: prefix, now_ms, events_maxlen, n, then per assignment 5 values:
--   task_id, agent_id, attempt, token, envelope
-- Returns one code per assignment: 1 applied, 0 task no longer pending, 2 agent not online,
-- 3 agent has no free slot.
local prefix, now, maxlen, n = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local out = {}
for i = 0, n - 1 do
  local b = 5 + i * 5
  local task_id, agent_id, attempt, token, envelope =
    ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2]), ARGV[b + 3], ARGV[b + 4]
  local tk = prefix .. 'task:' .. task_id
  local t = redis.call('HMGET', tk, 'state', 'attempt', 'capability', 'seq', 'workflow_id')
  local code = 1
  if tonumber(t[1]) ~= TASK_STATE_PENDING or tonumber(t[2]) ~= attempt - 1 then
    code = 0
  else
    local a = redis.call('HMGET', prefix .. 'agent:' .. agent_id, 'state', 'max_concurrency')
    local load = tonumber(redis.call('HGET', KEYS[2], agent_id) or '0')
    if tonumber(a[1]) ~= AGENT_STATE_ONLINE then
      code = 2
    elseif load >= tonumber(a[2]) then
      code = 3
    elseif redis.call('ZREM', prefix .. 'pending:' .. t[3], task_id) == 0 then
      code = 0
    end
  end
  if code == 1 then
    redis.call('HINCRBY', KEYS[2], agent_id, 1)
    redis.call('HSET', tk, 'state', TASK_STATE_ASSIGNED, 'attempt', attempt, 'agent_id', agent_id,
      'token', token, 'held', agent_id, 'assign_ms', now, 'start_ms', '')
    redis.call('ZREM', prefix .. 'tasks:' .. TASK_STATE_PENDING, task_id)
    redis.call('ZADD', prefix .. 'tasks:' .. TASK_STATE_ASSIGNED, t[4], task_id)
    redis.call('XADD', prefix .. 'inbox:' .. agent_id, '*', 'envelope', envelope)
    emit_event(KEYS[1], maxlen, {type = EVENT_TYPE_TASK_ASSIGNED, ms = now, task_id = task_id,
      workflow_id = t[5], agent_id = agent_id, capability = t[3], state = TASK_STATE_ASSIGNED,
      attempt = attempt})
  end
  out[#out + 1] = code
end
return out
