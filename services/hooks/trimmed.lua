-- Count the events lost among pending entries that were trimmed: XAUTOCLAIM reports the ids of
-- entries read by a runner that died and since trimmed from the events stream. An entry whose
-- deliveries were scheduled keeps its event in them (not lost); one still unscheduled is lost.
-- KEYS: events, hook_entries, hook_events_lost
-- ARGV: now_ms, events_maxlen, then the trimmed entry ids
-- Returns how many were lost (recorded: counter and one hook.failed event).
local lost = 0
for i = 3, #ARGV do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then
    lost = lost + 1
  end
end
if lost > 0 then
  redis.call('INCRBY', KEYS[3], lost)
  emit_event(KEYS[1], ARGV[2], {type = EVENT_TYPE_HOOK_FAILED, ms = ARGV[1],
    message = 'events lost: ' .. lost .. ' events read by a hooks runner that stopped were '
      .. 'trimmed from the events stream before their hooks were scheduled; any hooks they '
      .. 'would have triggered never ran'})
end
return lost
