-- Move tasks whose due time has passed from the due set to their pending queue
-- (promotelib.lua promote_due).
-- KEYS: due, events
-- ARGV: prefix, now_ms, limit, events_maxlen
-- Returns {tasks moved, due time (ms) of the earliest task still waiting, or -1}.
local moved, next_due = promote_due(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]),
  tonumber(ARGV[3]), ARGV[4])
return {moved, next_due}
