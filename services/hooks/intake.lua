-- Schedule hook deliveries for events-stream entries a runner read, and acknowledge entries no
-- hook wants. Idempotent: an entry already acknowledged or already scheduled is skipped, so an
-- entry read twice (XAUTOCLAIM after a runner died) never gets its hooks scheduled twice.
-- KEYS: events, hook_due, hook_entries
-- ARGV: delivery_prefix, group, now_ms, n, then per entry: entry_id, event_bytes, k,
--   then k pairs: delivery_id, hook_name
-- Returns {deliveries scheduled, entries acknowledged}.
local dprefix, group, now, n = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local scheduled, acked = 0, 0
local b = 5
for _ = 1, n do
  local entry_id, event, k = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2])
  local first = b + 3
  b = first + 2 * k
  if k == 0 then
    acked = acked + redis.call('XACK', KEYS[1], group, entry_id)
  elseif redis.call('HEXISTS', KEYS[3], entry_id) == 0
      and #redis.call('XPENDING', KEYS[1], group, entry_id, entry_id, 1) > 0 then
    for j = 0, k - 1 do
      local id, hook = ARGV[first + 2 * j], ARGV[first + 2 * j + 1]
      redis.call('HSET', dprefix .. id, 'hook', hook, 'entry', entry_id, 'event', event,
        'attempt', 0, 'created_ms', now)
      redis.call('ZADD', KEYS[2], now, id)
    end
    redis.call('HSET', KEYS[3], entry_id, k)
    scheduled = scheduled + k
  end
end
return {scheduled, acked}
