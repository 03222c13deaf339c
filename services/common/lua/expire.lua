-- Retention: delete records (tasks or workflows) that ended before the cutoff, with their index
-- entries: the hash, its per-state index entry, the all-records index and the finished set,
-- and the keys that live and die with the record (a task's output stream).
-- KEYS: finished, index
-- ARGV: hash_prefix, state_index_prefix, cutoff_ms, limit, tenant_index_prefix, then companion
--   key prefixes (`<prefix><id>` is deleted with each record)
local hash_prefix, state_prefix, cutoff, limit = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local tenant_prefix = ARGV[5]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff, 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  local key = hash_prefix .. id
  local v = redis.call('HMGET', key, 'state', 'tenant')
  if v[1] then
    redis.call('ZREM', state_prefix .. v[1], id)
  end
  if v[2] and v[2] ~= '' then
    redis.call('ZREM', tenant_prefix .. v[2], id)
  end
  redis.call('DEL', key)
  for i = 6, #ARGV do
    redis.call('DEL', ARGV[i] .. id)
  end
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
end
return #ids
