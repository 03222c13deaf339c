-- Record the outcome of one delivery attempt. Only the current attempt counts: a runner whose
-- lease ran out (and whose delivery another runner took over) cannot settle it.
-- 'retry' schedules the next attempt. 'ok' / 'fail' append hook.succeeded / hook.failed, delete
-- the delivery and, once every hook of the event has settled, acknowledge the event's entry in
-- the same step: the ack never comes before the outcome is recorded.
-- KEYS: events, hook_due, hook_entries
-- ARGV: delivery_prefix, group, now_ms, events_maxlen, delivery_id, attempt, verdict, next_ms,
--   message, task_id, workflow_id, agent_id, capability, step_id
-- Returns 1 when applied, 0 for a stale attempt or an unknown delivery.
local key = ARGV[1] .. ARGV[5]
local d = redis.call('HMGET', key, 'attempt', 'entry')
if not d[1] or tonumber(d[1]) ~= tonumber(ARGV[6]) then
  return 0
end
if ARGV[7] == 'retry' then
  redis.call('HSET', key, 'last_error', ARGV[9])
  redis.call('ZADD', KEYS[2], tonumber(ARGV[8]), ARGV[5])
  return 1
end
local etype = EVENT_TYPE_HOOK_FAILED
if ARGV[7] == 'ok' then
  etype = EVENT_TYPE_HOOK_SUCCEEDED
end
emit_event(KEYS[1], ARGV[4], {type = etype, ms = ARGV[3], task_id = ARGV[10],
  workflow_id = ARGV[11], agent_id = ARGV[12], capability = ARGV[13], step_id = ARGV[14],
  attempt = tonumber(ARGV[6]), message = ARGV[9]})
redis.call('DEL', key)
redis.call('ZREM', KEYS[2], ARGV[5])
if redis.call('HINCRBY', KEYS[3], d[2], -1) <= 0 then
  redis.call('HDEL', KEYS[3], d[2])
  redis.call('XACK', KEYS[1], ARGV[2], d[2])
end
return 1
