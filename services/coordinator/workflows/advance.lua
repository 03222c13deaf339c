-- Apply one batch of workflow decisions computed by the engine (plan.py), each only if it
-- still holds, so two coordinators (or a replay after a crash) never launch a step twice:
--   L: launch a WAITING step: create its task(s) in this same step (one per map element;
--      none for an empty map, which succeeds at once with output "[]"); a LAUNCH_OP
--      (scripts.py LaunchOp), then ntasks pairs: task_id, payload
--   F: fail a WAITING step that cannot start (e.g. its map input is not an array)
--   S: skip a WAITING step whose dependency failed
--   C: cancel a WAITING, RUNNING, AWAITING_SIGNAL or SLEEPING step
--   W: end the workflow (state, message), with its WORKFLOW_* event
-- Nothing applies unless the workflow is RUNNING; launches stop once cancel is requested.
-- KEYS: the taskcreate context (1..4), then workflow, pending_capabilities, workflows_running,
--   workflows_finished
-- ARGV: the taskcreate context (1..3), workflow_id, then ops (scripts.py encode_plan)
-- Returns how many ops applied.
local prefix, now, wid = ARGV[1], tonumber(ARGV[2]), ARGV[4]
local wk = KEYS[5]
local p = 5
local function nxt() local v = ARGV[p]; p = p + 1; return v end
local w = redis.call('HMGET', wk, 'state', 'cancel', 'seq', 'traceparent', 'tenant')
if tonumber(w[1]) ~= WORKFLOW_STATE_RUNNING then return 0 end
local cancelling = w[2] == '1'
-- Step tasks descend from the workflow's span: one trace per workflow.
local traceparent = w[4] or ''
local applied = 0

local function step_state(sid) return tonumber(redis.call('HGET', wk, 'st:' .. sid)) end

local nops = tonumber(nxt())
for _ = 1, nops do
  local op = nxt()
  if op == 'L' then
    local b = p - 1
    p = p + LAUNCH_OP_WIDTH
    local sid, cap = ARGV[b + LAUNCH_OP_STEP_ID], ARGV[b + LAUNCH_OP_CAPABILITY]
    local is_map, ntasks = ARGV[b + LAUNCH_OP_IS_MAP], tonumber(ARGV[b + LAUNCH_OP_NTASKS])
    local ok = not cancelling and step_state(sid) == STEP_STATE_WAITING
    local ids = {}
    for i = 0, ntasks - 1 do
      local tid, payload = nxt(), nxt()
      if ok then
        -- Steps have no per-task durations: the fields left nil mean the defaults.
        local row = {}
        row[NEW_TASK_TASK_ID], row[NEW_TASK_CAPABILITY] = tid, cap
        row[NEW_TASK_PRIORITY] = ARGV[b + LAUNCH_OP_PRIORITY]
        row[NEW_TASK_MAX_ATTEMPTS] = ARGV[b + LAUNCH_OP_MAX_ATTEMPTS]
        row[NEW_TASK_LABELS], row[NEW_TASK_REQUEST_ID] = ARGV[b + LAUNCH_OP_LABELS], ''
        row[NEW_TASK_TIMEOUT_MS] = ARGV[b + LAUNCH_OP_TIMEOUT_MS]
        row[NEW_TASK_TRACE_ID], row[NEW_TASK_WORKFLOW_ID] = traceparent, wid
        row[NEW_TASK_STEP_ID], row[NEW_TASK_TENANT] = sid, w[5] or nil
        create_task(row, payload)
        redis.call('HSET', wk, 'x:' .. tid, sid .. ',' .. i)
        ids[#ids + 1] = tid
      end
    end
    if ok then
      applied = applied + 1
      if ntasks > 0 then redis.call('SADD', KEYS[6], cap) end
      redis.call('HSET', wk, 'st:' .. sid, STEP_STATE_RUNNING, 't0:' .. sid, now,
        'tk:' .. sid, table.concat(ids, ','))
      if is_map == '1' then
        redis.call('HSET', wk, 'mt:' .. sid, ntasks, 'md:' .. sid, 0)
        if ntasks == 0 then
          redis.call('HSET', wk, 'st:' .. sid, STEP_STATE_SUCCEEDED, 't1:' .. sid, now, 'o:' .. sid, '[]')
        end
      end
    end
  elseif op == 'F' or op == 'S' then
    local sid = nxt()
    local err = op == 'F' and nxt() or 'a dependency did not succeed'
    if step_state(sid) == STEP_STATE_WAITING then
      applied = applied + 1
      local to = op == 'F' and STEP_STATE_FAILED or STEP_STATE_SKIPPED
      redis.call('HSET', wk, 'st:' .. sid, to, 'er:' .. sid, err, 't1:' .. sid, now)
    end
  elseif op == 'C' then
    local sid = nxt()
    local st = step_state(sid)
    if st == STEP_STATE_WAITING or st == STEP_STATE_RUNNING or st == STEP_STATE_AWAITING_SIGNAL
        or st == STEP_STATE_SLEEPING then
      applied = applied + 1
      redis.call('HSET', wk, 'st:' .. sid, STEP_STATE_CANCELLED, 't1:' .. sid, now)
    end
  elseif op == 'W' then
    local to, message = tonumber(nxt()), nxt()
    applied = applied + 1
    redis.call('HSET', wk, 'state', to, 'end_ms', now, 'error', message)
    redis.call('ZREM', KEYS[7], wid)
    redis.call('ZADD', KEYS[8], now, wid)
    redis.call('ZADD', prefix .. K_WORKFLOWS_BY_STATE .. to, w[3], wid)
    local types = {[WORKFLOW_STATE_SUCCEEDED] = EVENT_TYPE_WORKFLOW_SUCCEEDED,
      [WORKFLOW_STATE_FAILED] = EVENT_TYPE_WORKFLOW_FAILED,
      [WORKFLOW_STATE_CANCELLED] = EVENT_TYPE_WORKFLOW_CANCELLED}
    emit_event(KEYS[1], ARGV[3], {type = types[to], ms = now, workflow_id = wid, message = message,
      tenant = w[5] or nil})
    return applied
  end
end
return applied
