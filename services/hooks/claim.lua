-- Take up to `limit` due deliveries. Each gets its next attempt number and a lease: its due time
-- moves to now + lease, so another runner takes it over only if this one dies or stalls.
-- KEYS: hook_due
-- ARGV: delivery_prefix, now_ms, limit, lease_ms
-- Returns a flat list: the due time (ms) of the earliest delivery left (-1 for none), then
-- delivery_id, hook, entry_id, event_bytes, attempt, ... per claimed delivery.
local now, lease = tonumber(ARGV[2]), tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {'-1'}
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
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if head[2] then out[1] = head[2] end
return out
