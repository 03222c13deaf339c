-- Re-run a FAILED or CANCELLED workflow from its failure: every step that did not succeed
-- (failed, cancelled, skipped, or cut short while waiting) goes back to WAITING with its
-- tasks, outputs, errors and timers forgotten (its retry count kept); steps that succeeded
-- keep their tasks and outputs. The workflow is RUNNING again; the engine then launches
-- what is ready. Appends WORKFLOW_RETRIED.
-- KEYS: workflow, events, workflows_running, workflows_finished, workflow_timers
-- ARGV: prefix, now_ms, events_maxlen, workflow_id
-- Returns {state before (0: no such workflow), steps reset}.
local prefix, now, maxlen, wid = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local wk = KEYS[1]
local w = redis.call('HMGET', wk, 'state', 'seq')
local state = tonumber(w[1])
if not state then return {0, 0} end
if state ~= WORKFLOW_STATE_FAILED and state ~= WORKFLOW_STATE_CANCELLED then return {state, 0} end
local all = redis.call('HGETALL', wk)
-- The per-step fields of a run (model.py); the state is reset and the retry count kept.
local RUN_FIELDS = {tk = true, ag = true, at = true, t0 = true, t1 = true, er = true, mt = true,
  md = true, o = true, wk = true, sb = true}
local reset, drop = {}, {}
for i = 1, #all, 2 do
  local sid = string.match(all[i], '^st:(.*)$')
  if sid and tonumber(all[i + 1]) ~= STEP_STATE_SUCCEEDED then reset[sid] = true end
end
local n = 0
for i = 1, #all, 2 do
  local name = all[i]
  local kind, sid = string.match(name, '^(%a%w?):(.*)$')
  if kind and RUN_FIELDS[kind] and reset[sid] then
    drop[#drop + 1] = name
    if kind == 'tk' then
      for tid in string.gmatch(all[i + 1], '[^,]+') do
        drop[#drop + 1] = 'x:' .. tid
        drop[#drop + 1] = 'd:' .. tid
      end
    end
  end
  local msid = string.match(name, '^mo:(.*):%d+$')
  if msid and reset[msid] then drop[#drop + 1] = name end
end
for sid in pairs(reset) do
  n = n + 1
  redis.call('HSET', wk, 'st:' .. sid, STEP_STATE_WAITING)
  redis.call('HINCRBY', wk, 'rt:' .. sid, 1)
  redis.call('ZREM', KEYS[5], wid .. '/' .. sid)
end
for i = 1, #drop, 500 do
  redis.call('HDEL', wk, unpack(drop, i, math.min(i + 499, #drop)))
end
redis.call('HDEL', wk, 'cancel', 'end_ms', 'error')
redis.call('HSET', wk, 'state', WORKFLOW_STATE_RUNNING)
redis.call('HINCRBY', wk, 'retries', 1)
redis.call('ZREM', prefix .. K_WORKFLOWS_BY_STATE .. state, wid)
redis.call('ZREM', KEYS[4], wid)
redis.call('ZADD', KEYS[3], w[2], wid)
emit_event(KEYS[2], maxlen, {type = EVENT_TYPE_WORKFLOW_RETRIED, ms = now, workflow_id = wid,
  message = n .. ' steps re-run'})
return {state, n}
