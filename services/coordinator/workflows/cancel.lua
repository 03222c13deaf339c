-- Ask a workflow to cancel: no step launches after this; the engine then cancels the running
-- tasks and ends the workflow CANCELLED (see workflow_engine.py). Idempotent.
-- KEYS: workflow
-- Returns the workflow state (0 when it does not exist).
local wk = KEYS[1]
local state = tonumber(redis.call('HGET', wk, 'state'))
if not state then return 0 end
if state == WORKFLOW_STATE_RUNNING then redis.call('HSET', wk, 'cancel', '1') end
return state
