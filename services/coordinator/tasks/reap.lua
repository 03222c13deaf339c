-- Enforce the deadlines of in-flight and waiting tasks, a bounded batch of each per call:
--  * an attempt whose lease ran out (no heartbeat named it) is reclaimed and retried;
--  * an attempt past its start-to-close deadline fails and is retried, and so does one that
--    reported no progress or output within its progress_timeout;
--  * a task not started before its schedule-to-start deadline ends TIMED_OUT.
-- A lease that outlived its attempt (cancelled or finished task) just frees the slot.
-- KEYS: the tasklib context (1..8)
-- ARGV: the tasklib context (1..7), then limit, jitter (0..1)
-- Returns {reclaimed, attempts_timed_out (both deadlines), tasks_timed_out, due time (ms) of the
-- earliest lease or deadline still pending, or -1}.
local C = context()
local limit, jitter = ARGV[8], tonumber(ARGV[9])
local function next_jitter() jitter = (jitter + 0.6180339887) % 1; return jitter end
local counts = {0, 0, 0}

for _, id in ipairs(redis.call('ZRANGEBYSCORE', C.leases, '-inf', C.now, 'LIMIT', 0, limit)) do
  local t = load_task(C, id)
  if t.state and is_live(t) then
    local who = (t.held and t.held ~= '') and t.held or (t.agent_id or '')
    lose_attempt(C, id, t.attempt, 'heartbeat timeout: agent ' .. who ..
      ' stopped reporting attempt ' .. t.attempt, EVENT_TYPE_TASK_RECLAIMED, next_jitter(), false)
    counts[1] = counts[1] + 1
  else
    if t.state then release_slot(C, t) end
    redis.call('ZREM', C.leases, id)
  end
end

for _, id in ipairs(redis.call('ZRANGEBYSCORE', C.attempt_deadlines, '-inf', C.now, 'LIMIT', 0, limit)) do
  local t = load_task(C, id)
  redis.call('ZREM', C.attempt_deadlines, id)
  if t.state and is_live(t) then
    local secs = (tonumber(t.timeout_ms) or 0) / 1000
    lose_attempt(C, id, t.attempt, 'TimeoutError: attempt ' .. t.attempt ..
      ' ran longer than ' .. secs .. 's (start-to-close)', nil, next_jitter(), false)
    counts[2] = counts[2] + 1
  end
end

local progress_deadlines = C.prefix .. K_PROGRESS_DEADLINES
for _, id in ipairs(redis.call('ZRANGEBYSCORE', progress_deadlines, '-inf', C.now, 'LIMIT', 0, limit)) do
  local t = load_task(C, id)
  redis.call('ZREM', progress_deadlines, id)
  if t.state and is_live(t) then
    local secs = (tonumber(t.progress_ms) or 0) / 1000
    lose_attempt(C, id, t.attempt, 'TimeoutError: attempt ' .. t.attempt ..
      ' reported no progress or output for ' .. secs .. 's (progress_timeout)', nil, next_jitter(),
      false)
    counts[2] = counts[2] + 1
  end
end

for _, id in ipairs(redis.call('ZRANGEBYSCORE', C.start_deadlines, '-inf', C.now, 'LIMIT', 0, limit)) do
  local t = load_task(C, id)
  redis.call('ZREM', C.start_deadlines, id)
  if t.state == TASK_STATE_PENDING or t.state == TASK_STATE_SCHEDULED then
    dequeue(C.prefix, t, false)
    redis.call('ZREM', C.due, id)
    unpark(C.prefix, t)
    local why = 'not started before its schedule-to-start deadline'
    finish(C, t, TASK_STATE_TIMED_OUT, {'error', why})
    emit(C, event_of(t, EVENT_TYPE_TASK_TIMED_OUT, TASK_STATE_TIMED_OUT, tonumber(t.attempt),
      '', why))
    counts[3] = counts[3] + 1
  end
end
local next_due = -1
for _, key in ipairs({C.leases, C.attempt_deadlines, progress_deadlines, C.start_deadlines}) do
  local head = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  local due = tonumber(head[2])
  if due and (next_due < 0 or due < next_due) then next_due = due end
end
counts[4] = next_due
return counts
