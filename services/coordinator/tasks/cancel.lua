-- Cancel a task that has not finished. A pending task leaves its queue, a scheduled (delayed)
-- one the due set; an assigned or running
-- one is marked CANCELLED at once. Its agent learns of it from its next heartbeat response and
-- stops the handler; the slot stays held until the agent reports back or the attempt's lease
-- runs out.
-- KEYS: the tasklib context (1..8)
-- ARGV: the tasklib context (1..7), then task_id
-- Returns the previous state (0 when the task does not exist).
local C = context()
local t = load_task(C, ARGV[8])
if not t.state then return 0 end
local state = t.state
if state ~= TASK_STATE_PENDING and state ~= TASK_STATE_SCHEDULED and not is_live(t) then
  return state
end
dequeue(C.prefix, t, false)
redis.call('ZREM', C.due, t.id)
redis.call('ZREM', C.attempt_deadlines, t.id)
if state == TASK_STATE_PENDING then unpark(C.prefix, t) end
finish(C, t, TASK_STATE_CANCELLED, {'error', 'cancelled by request'})
emit(C, event_of(t, EVENT_TYPE_TASK_CANCELLED, TASK_STATE_CANCELLED, tonumber(t.attempt),
  t.agent_id, 'cancelled by request'))
return state
