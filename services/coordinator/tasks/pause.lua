-- Pause or resume a capability's queue (an operator's request); idempotent: the event is
-- emitted only when the flag changes.
-- KEYS: paused_queues, events
-- ARGV: capability, now_ms, '1' to pause or '0' to resume, events_maxlen
-- Returns when the queue was paused (ms), or -1 when it is not paused now.
local cap, now = ARGV[1], tonumber(ARGV[2])
local since = redis.call('HGET', KEYS[1], cap)
if ARGV[3] == '1' then
  if not since then
    redis.call('HSET', KEYS[1], cap, now)
    emit_event(KEYS[2], ARGV[4], {type = EVENT_TYPE_QUEUE_PAUSED, ms = now, capability = cap})
    since = now
  end
  return since
end
if since then
  redis.call('HDEL', KEYS[1], cap)
  emit_event(KEYS[2], ARGV[4], {type = EVENT_TYPE_QUEUE_RESUMED, ms = now, capability = cap})
end
return -1
