-- Take up to `limit` due deliveries. Each gets its next attempt number and a lease: its due time
-- moves to now + lease, so another runner takes it over only if this one dies or stalls.
-- KEYS: hook_due
-- ARGV: delivery_prefix, now_ms, limit, lease_ms
-- Returns a flat list: delivery_id, hook, entry_id, event_bytes, attempt, ...
local now, lease = tonumber(ARGV[2]), tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local key = ARGV[1] .. id
  local d = redis.call('HMGET', key, 'hook', 'entry', 'event')
  if not d[1] then
    redis.call('ZREM', KEYS[1], id)
  else
    local attempt = redis.call('HINCRBY', key, 'attempt', 1)
    redis.call('ZADD', KEYS[1], now + lease, id)
    out[#out + 1] = id
    out[#out + 1] = d[1]
    out[#out + 1] = d[2]
    out[#out + 1] = d[3]
    out[#out + 1] = attempt
  end
end
return out
