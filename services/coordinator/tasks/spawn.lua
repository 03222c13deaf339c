-- Create a child task of a running task (ctx.spawn), only if the caller runs the parent: the
-- parent is ASSIGNED or RUNNING and its current attempt token is the one given. The child
-- joins the parent's workflow, tenant and trace (its workflow_id and traceparent) and its
-- fairness key and weight, records parent_task_id, and is added to the parent's children set
-- (cancelled with the parent; the parent is marked `children`, so tasklib.lua's finish names
-- it on the ended-parents stream if it ends in any state but SUCCEEDED).
-- The child records who spawned it (spawned_by: the caller's principal name): an agent may
-- read and cancel only the children it spawned.
-- A repeated request_id returns the task it created before.
-- KEYS: the taskcreate context (1..4), parent task, parent's children set
-- ARGV: the taskcreate context (1..3), request_ttl_s, token, retention_ms, row (JSON: the
--   NEW_TASK values, then the request key), payload, parent task id, spawner's principal name
-- Returns {code, value}: 1 and the child id (or the earlier one), 0 no such parent, -1 wrong
--   token, -2 the parent is not running (value: its state).
local t = redis.call('HMGET', KEYS[5], 'state', 'token', 'workflow_id', 'trace_id',
  'fairness_key', 'fairness_weight', 'tenant')
local state = tonumber(t[1])
if not state then return {0, ''} end
-- A SUCCEEDED parent keeps no token (tasklib.lua drop_defaults): it is not running, as any
-- finished parent is to its last attempt.
if t[2] ~= ARGV[5] and (t[2] or state ~= TASK_STATE_SUCCEEDED) then return {-1, ''} end
if state ~= TASK_STATE_ASSIGNED and state ~= TASK_STATE_RUNNING then return {-2, tostring(state)} end
local row = cjson.decode(ARGV[7])
local request_key = row[NEW_TASK_WIDTH + 1]
if request_key ~= '' then
  local existing = redis.call('GET', request_key)
  if existing then return {1, existing} end
  redis.call('SET', request_key, row[NEW_TASK_TASK_ID], 'EX', ARGV[4])
end
row[NEW_TASK_WORKFLOW_ID] = t[3] or ''
row[NEW_TASK_TRACE_ID] = t[4] or ''
-- A child takes its turns under its parent's fairness key and weight (docs/flow-control.md).
row[NEW_TASK_FAIRNESS_KEY] = t[5] or row[NEW_TASK_FAIRNESS_KEY]
row[NEW_TASK_FAIRNESS_WEIGHT] = t[6] or row[NEW_TASK_FAIRNESS_WEIGHT]
row[NEW_TASK_TENANT] = t[7] or ''  -- the child belongs to the parent's tenant
create_task(row, ARGV[8])
local id = row[NEW_TASK_TASK_ID]
redis.call('HSET', ARGV[1] .. K_TASK .. id, 'parent_task_id', ARGV[9], 'spawned_by', ARGV[10])
redis.call('SADD', KEYS[6], id)
redis.call('HSET', KEYS[5], 'children', '1')  -- its end, unless SUCCEEDED, cancels them (finish)
redis.call('PEXPIRE', KEYS[6], ARGV[6])
return {1, id}
