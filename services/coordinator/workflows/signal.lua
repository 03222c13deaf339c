-- Deliver a signal to a step that waits for one: it succeeds with the payload as its output
-- and its timeout timer is dropped. Repeating a delivered signal with the same payload
-- changes nothing (idempotent).
-- KEYS: workflow, workflow_timers, events
-- ARGV: now_ms, events_maxlen, workflow_id, step_id, payload, signalled_by
-- Returns {code, state}: code 1 signalled now, 2 already signalled with this payload,
--   0 the workflow does not exist, -1 no such step, -2 the workflow is not RUNNING (state:
--   the workflow's), -3 the step is not AWAITING_SIGNAL (state: the step's).
local now, maxlen, wid, sid, payload = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local wk = KEYS[1]
local wstate = tonumber(redis.call('HGET', wk, 'state'))
if not wstate then return {0, 0} end
local st = tonumber(redis.call('HGET', wk, 'st:' .. sid))
if not st then return {-1, 0} end
if st == STEP_STATE_SUCCEEDED and redis.call('HEXISTS', wk, 'sb:' .. sid) == 1
    and redis.call('HGET', wk, 'o:' .. sid) == payload then
  return {2, st}
end
if wstate ~= WORKFLOW_STATE_RUNNING then return {-2, wstate} end
if st ~= STEP_STATE_AWAITING_SIGNAL then return {-3, st} end
redis.call('HSET', wk, 'st:' .. sid, STEP_STATE_SUCCEEDED, 't1:' .. sid, now, 'o:' .. sid, payload,
  'sb:' .. sid, ARGV[6])
redis.call('ZREM', KEYS[2], wid .. '/' .. sid)
emit_event(KEYS[3], maxlen, {type = EVENT_TYPE_WORKFLOW_STEP_SIGNALLED, ms = now,
  workflow_id = wid, step_id = sid, message = ARGV[6]})
return {1, st}
