-- Put a dead-lettered task back in its queue with a fresh attempt budget. Attempt numbers keep
-- counting up (results of old attempts stay fenced off); the budget restarts from here.
-- The dead-letter entry is deleted, so a second retry of the same entry finds nothing.
-- KEYS: the tasklib context (1..8)
-- ARGV: the tasklib context (1..7), then dead_letter_id
-- Returns {'OK', task_id}, {'NOT_FOUND'}, {'TASK_GONE', task_id}, {'NOT_FAILED', task_id, state}
-- or {'IN_WORKFLOW', task_id}.
local C = context()
local entry_id = ARGV[8]
local rows = redis.call('XRANGE', C.dead, entry_id, entry_id)
if #rows == 0 then return {'NOT_FOUND'} end
local fields = rows[1][2]
local task_id = ''
for i = 1, #fields, 2 do
  if fields[i] == 'task_id' then task_id = fields[i + 1] end
end
local t = load_task(C, task_id)
if not t.state then return {'TASK_GONE', task_id} end
if t.state ~= TASK_STATE_FAILED then return {'NOT_FAILED', task_id, t.state} end
if t.workflow_id and t.workflow_id ~= '' then return {'IN_WORKFLOW', task_id} end
move_index(C, t, TASK_STATE_PENDING)
redis.call('HSET', t.key, 'state', TASK_STATE_PENDING, 'attempt_base', t.attempt, 'end_ms', '')
t.state = TASK_STATE_PENDING
redis.call('ZREM', C.finished, task_id)
enqueue(C.prefix, t)
redis.call('XDEL', C.dead, entry_id)
emit(C, event_of(t, EVENT_TYPE_TASK_REQUEUED, TASK_STATE_PENDING, tonumber(t.attempt), '',
  'retried from dead letter ' .. entry_id))
return {'OK', task_id}
