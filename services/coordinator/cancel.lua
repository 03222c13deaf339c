-- Cancel a task that has not finished. A pending task leaves its queue; an assigned or running
-- one is marked CANCELLED at once and keeps its agent slot until the agent reports back.
-- KEYS: events, due, finished
-- ARGV: prefix, now_ms, events_maxlen, task_id
-- Returns the previous state (0 when the task does not exist).
local prefix, now, maxlen, task_id = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local tk = prefix .. 'task:' .. task_id
local t = redis.call('HMGET', tk, 'state', 'capability', 'seq', 'attempt', 'agent_id', 'workflow_id',
  'step_id')
local state = tonumber(t[1])
if not state then return 0 end
if state ~= TASK_STATE_PENDING and state ~= TASK_STATE_ASSIGNED and state ~= TASK_STATE_RUNNING then
  return state
end
redis.call('ZREM', prefix .. 'pending:' .. t[2], task_id)
redis.call('ZREM', KEYS[2], task_id)
redis.call('HSET', tk, 'state', TASK_STATE_CANCELLED, 'end_ms', now, 'error', 'cancelled by request')
redis.call('ZREM', prefix .. 'tasks:' .. state, task_id)
redis.call('ZADD', prefix .. 'tasks:' .. TASK_STATE_CANCELLED, t[3], task_id)
redis.call('ZADD', KEYS[3], now, task_id)
emit_event(KEYS[1], maxlen, {type = EVENT_TYPE_TASK_CANCELLED, ms = now, task_id = task_id,
  workflow_id = t[6], agent_id = t[5], capability = t[2], state = TASK_STATE_CANCELLED,
  attempt = tonumber(t[4]), step_id = t[7]})
notify_workflow(prefix, t[6], t[7], task_id, TASK_STATE_CANCELLED)
return state
