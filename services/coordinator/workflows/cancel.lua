-- Ask a workflow to cancel: no step launches after this; the engine then cancels the running
-- tasks and ends the workflow CANCELLED (see workflow_engine.py). Idempotent.
-- ARGV: prefix, workflow_id
-- Returns the workflow state (0 when it does not exist).
local wk = ARGV[1] .. 'workflow:' .. ARGV[2]
local state = tonumber(redis.call('HGET', wk, 'state'))
if not state then return 0 end
if state == WORKFLOW_STATE_RUNNING then redis.call('HSET', wk, 'cancel', '1') end
return state
