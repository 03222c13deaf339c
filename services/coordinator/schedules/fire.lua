-- One fire decision of a schedule, applied only if the schedule is still where the caller saw
-- it (so two coordinators firing the same tick apply it once). The run itself was created
-- before, with a request_id derived from the schedule and the tick: a repeated fire finds the
-- same run, so no tick starts two.
-- KEYS: schedule, schedules_due, events
-- ARGV: prefix, now_ms, events_maxlen, name, mode, tick_ms, next_ms, run_id, run_kind ('task' |
--   'workflow'), recheck_ms
-- Modes: 'run' (the grid tick `tick_ms` fired `run_id`; the next one is `next_ms`), 'skip' (the
-- grid tick found the previous run active), 'buffer' (the tick buffered at `tick_ms` fired
-- once the previous run ended), 'wait' (a buffered tick's run is still active: look again
-- later), 'trigger' (fired out of the grid).
-- Returns 'fired', 'skipped', 'waiting', or why nothing changed: 'gone', 'paused', 'lost'
-- (another fire applied first), 'stale' (the run's state moved on: decide again).
local prefix, now, maxlen, name, mode = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local tick, next_ms, run_id, run_kind = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], ARGV[9]
local recheck_ms = tonumber(ARGV[10])
local h = KEYS[1]
if redis.call('EXISTS', h) == 0 then
  redis.call('ZREM', KEYS[2], name)
  return 'gone'
end
local f = redis.call('HMGET', h, 'paused', 'next_ms', 'buffered_ms', 'last_run', 'last_kind',
  'overlap')
local paused, stored_next, buffered = f[1] == '1', tonumber(f[2]), tonumber(f[3]) or 0

local function run_active()
  local id = f[4]
  if not id or id == '' then return false end
  if f[5] == 'workflow' then
    return tonumber(redis.call('HGET', prefix .. K_WORKFLOW .. id, 'state'))
      == WORKFLOW_STATE_RUNNING
  end
  local st = tonumber(redis.call('HGET', prefix .. K_TASK .. id, 'state'))
  return st ~= nil and st ~= TASK_STATE_SUCCEEDED and st ~= TASK_STATE_FAILED
    and st ~= TASK_STATE_CANCELLED and st ~= TASK_STATE_TIMED_OUT
end

local function record_run(at_tick)
  redis.call('HSET', h, 'last_run', run_id, 'last_kind', run_kind, 'last_ms', now)
  redis.call('HINCRBY', h, 'fired', 1)
  local ev = {type = EVENT_TYPE_SCHEDULE_FIRED, ms = now, schedule = name, tick_ms = at_tick,
    message = mode}
  if run_kind == 'workflow' then ev.workflow_id = run_id else ev.task_id = run_id end
  emit_event(KEYS[3], maxlen, ev)
end

if mode == 'trigger' then
  record_run(now)
  return 'fired'
end
if paused then return 'paused' end
if mode == 'run' or mode == 'skip' then
  if stored_next ~= tick then return 'lost' end
  local due = next_ms
  if mode == 'skip' then
    if not run_active() then return 'stale' end
    redis.call('HINCRBY', h, 'skipped', 1)
    redis.call('HSET', h, 'skip_tick', tick)
    local message = 'skipped'
    if tonumber(f[6]) == OVERLAP_POLICY_BUFFER_ONE then
      -- One tick is kept (the first); the loop keeps looking for the run's end meanwhile.
      if buffered == 0 then
        redis.call('HSET', h, 'buffered_ms', tick)
        message = 'buffered'
      end
      due = math.min(next_ms, now + recheck_ms)
    end
    emit_event(KEYS[3], maxlen, {type = EVENT_TYPE_SCHEDULE_SKIPPED, ms = now, schedule = name,
      tick_ms = tick, message = message, task_id = f[5] ~= 'workflow' and f[4] or nil,
      workflow_id = f[5] == 'workflow' and f[4] or nil})
    redis.call('HSET', h, 'next_ms', next_ms)
    redis.call('ZADD', KEYS[2], due, name)
    return 'skipped'
  end
  redis.call('HSET', h, 'next_ms', next_ms, 'buffered_ms', '0')
  record_run(tick)
  redis.call('ZADD', KEYS[2], next_ms, name)
  return 'fired'
end
if mode == 'buffer' then
  if buffered ~= tick then return 'lost' end
  redis.call('HSET', h, 'buffered_ms', '0')
  record_run(tick)
  redis.call('ZADD', KEYS[2], stored_next, name)
  return 'fired'
end
-- 'wait'
if buffered == 0 then
  redis.call('ZADD', KEYS[2], stored_next, name)
  return 'stale'
end
redis.call('ZADD', KEYS[2], math.min(stored_next, now + recheck_ms), name)
return 'waiting'
