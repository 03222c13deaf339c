-- Create a schedule unless its name is taken (0 then), index it, queue its first fire and
-- append SCHEDULE_UPDATED ('created').
-- KEYS: schedule, schedules_index, schedules_due, events
-- ARGV: now_ms, events_maxlen, name, def (Schedule bytes), tenant, overlap, anchor_ms, next_ms
local now, name, next_ms = tonumber(ARGV[1]), ARGV[3], ARGV[8]
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'def', ARGV[4], 'tenant', ARGV[5], 'overlap', ARGV[6],
  'anchor_ms', ARGV[7], 'create_ms', now, 'next_ms', next_ms, 'paused', '0', 'fired', 0,
  'skipped', 0, 'buffered_ms', '0', 'last_ms', '0', 'last_run', '', 'last_kind', '')
redis.call('ZADD', KEYS[2], 0, name)
redis.call('ZADD', KEYS[3], next_ms, name)
emit_event(KEYS[4], ARGV[2], {type = EVENT_TYPE_SCHEDULE_UPDATED, ms = now, schedule = name,
  message = 'created'})
return 1
