-- Put signal and sleep steps whose dependencies succeeded into their waiting state (no task):
-- AWAITING_SIGNAL or SLEEPING, each only if still WAITING and the workflow RUNNING and not
-- cancelling, so a replay or a second coordinator changes nothing. A positive wait sets the
-- step's wake time (`wk:`) and a timer in the workflow timers set.
-- KEYS: workflow, workflow_timers, events
-- ARGV: now_ms, events_maxlen, workflow_id, n, then n triples: step_id, state, wait_ms
-- Returns the earliest wake time set (-1: none).
local now, maxlen, wid, n = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
local wk = KEYS[1]
local w = redis.call('HMGET', wk, 'state', 'cancel')
if tonumber(w[1]) ~= WORKFLOW_STATE_RUNNING or w[2] == '1' then return -1 end
local earliest = -1
for i = 0, n - 1 do
  local sid, to, wait = ARGV[5 + 3 * i], tonumber(ARGV[6 + 3 * i]), tonumber(ARGV[7 + 3 * i])
  if tonumber(redis.call('HGET', wk, 'st:' .. sid)) == STEP_STATE_WAITING then
    redis.call('HSET', wk, 'st:' .. sid, to, 't0:' .. sid, now)
    local message = ''
    if wait > 0 then
      local due = now + wait
      redis.call('HSET', wk, 'wk:' .. sid, due)
      redis.call('ZADD', KEYS[2], due, wid .. '/' .. sid)
      if earliest < 0 or due < earliest then earliest = due end
      message = 'until ' .. due
    end
    local ev = to == STEP_STATE_SLEEPING and EVENT_TYPE_WORKFLOW_STEP_SLEEPING
      or EVENT_TYPE_WORKFLOW_STEP_AWAITING_SIGNAL
    emit_event(KEYS[3], maxlen, {type = ev, ms = now, workflow_id = wid, step_id = sid,
      message = message})
  end
end
return earliest
