-- Pause, resume or delete a schedule. Returns 0 when it does not exist, 2 when nothing changed
-- (already paused / not paused), 1 when applied; each change appends its event.
-- KEYS: schedule, schedules_due, events, schedules_index
-- ARGV: now_ms, events_maxlen, name, op ('pause' | 'resume' | 'delete'), next_ms (resume)
local now, maxlen, name, op = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local h = KEYS[1]
if redis.call('EXISTS', h) == 0 then return 0 end
local paused = redis.call('HGET', h, 'paused') == '1'
if op == 'delete' then
  redis.call('DEL', h)
  redis.call('ZREM', KEYS[2], name)
  redis.call('ZREM', KEYS[4], name)
  emit_event(KEYS[3], maxlen, {type = EVENT_TYPE_SCHEDULE_DELETED, ms = now, schedule = name})
  return 1
end
if op == 'pause' then
  if paused then return 2 end
  redis.call('HSET', h, 'paused', '1')
  redis.call('ZREM', KEYS[2], name)
else
  if not paused then return 2 end
  -- Resuming forgets the ticks missed while paused: the next fire is on the grid after now.
  redis.call('HSET', h, 'paused', '0', 'next_ms', ARGV[5], 'buffered_ms', '0')
  redis.call('ZADD', KEYS[2], ARGV[5], name)
end
emit_event(KEYS[3], maxlen, {type = EVENT_TYPE_SCHEDULE_UPDATED, ms = now, schedule = name,
  message = op == 'pause' and 'paused' or 'resumed'})
return 1
