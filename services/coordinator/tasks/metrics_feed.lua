-- Count each event once: XACK it in the metrics group; only the first ack increments its counter.
-- KEYS: events, counters
-- ARGV: group, n, then per entry a COUNT_ROW, read by its COUNT_ROW_* indexes (scripts.py
--   CountRow: entry_id, counter field, '' counting nothing)
-- Returns one 0/1 per entry: 1 when this call acknowledged (and counted) it.
local group, n = ARGV[1], tonumber(ARGV[2])
local out = {}
for i = 0, n - 1 do
  local b = 2 + i * COUNT_ROW_WIDTH
  local id, field = ARGV[b + COUNT_ROW_ENTRY_ID], ARGV[b + COUNT_ROW_COUNTER]
  local acked = redis.call('XACK', KEYS[1], group, id)
  if acked == 1 and field ~= '' then
    redis.call('HINCRBY', KEYS[2], field, 1)
  end
  out[#out + 1] = acked
end
return out
