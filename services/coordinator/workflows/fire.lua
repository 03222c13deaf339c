-- Fire one due workflow timer "<workflow>/<step>": a SLEEPING step wakes and succeeds (output
-- null); an AWAITING_SIGNAL step takes its timeout outcome (succeed with the given output, or
-- fail). The timer is removed; a step no longer waiting (signalled, cancelled, retried) is
-- left alone, so a late or repeated firing is harmless.
-- KEYS: workflow, workflow_timers, events
-- ARGV: now_ms, events_maxlen, workflow_id, step_id, outcome (SignalTimeoutOutcome),
--   timeout_output, timeout_ms
-- Returns 1 when the step changed, 0 otherwise.
local now, maxlen, wid, sid = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local wk, member = KEYS[1], ARGV[3] .. '/' .. ARGV[4]
local due = tonumber(redis.call('ZSCORE', KEYS[2], member))
if due == nil or due > now then return 0 end
redis.call('ZREM', KEYS[2], member)
if tonumber(redis.call('HGET', wk, 'state')) ~= WORKFLOW_STATE_RUNNING then return 0 end
local st = tonumber(redis.call('HGET', wk, 'st:' .. sid))
local ev = {ms = now, workflow_id = wid, step_id = sid}
if st == STEP_STATE_SLEEPING then
  redis.call('HSET', wk, 'st:' .. sid, STEP_STATE_SUCCEEDED, 't1:' .. sid, now, 'o:' .. sid, 'null')
  ev.type = EVENT_TYPE_WORKFLOW_STEP_WOKE
elseif st == STEP_STATE_AWAITING_SIGNAL then
  ev.type = EVENT_TYPE_WORKFLOW_STEP_SIGNAL_TIMED_OUT
  if tonumber(ARGV[5]) == SIGNAL_TIMEOUT_OUTCOME_SUCCEED then
    local output = ARGV[6] ~= '' and ARGV[6] or 'null'
    redis.call('HSET', wk, 'st:' .. sid, STEP_STATE_SUCCEEDED, 't1:' .. sid, now, 'o:' .. sid, output)
    ev.message = 'succeeded with the default output'
  else
    local err = 'no signal within ' .. ARGV[7] .. ' ms'
    redis.call('HSET', wk, 'st:' .. sid, STEP_STATE_FAILED, 't1:' .. sid, now, 'er:' .. sid, err)
    ev.message = err
  end
else
  return 0
end
emit_event(KEYS[3], maxlen, ev)
return 1
