-- Retention: delete workflows that ended before the cutoff, with their index entries.
-- KEYS: workflows_finished, workflows_index
-- ARGV: prefix, cutoff_ms, limit
local prefix, cutoff, limit = ARGV[1], ARGV[2], ARGV[3]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff, 'LIMIT', 0, limit)
for _, wid in ipairs(ids) do
  local wk = prefix .. 'workflow:' .. wid
  local state = redis.call('HGET', wk, 'state')
  if state then
    redis.call('ZREM', prefix .. 'workflows:' .. state, wid)
  end
  redis.call('DEL', wk)
  redis.call('ZREM', KEYS[2], wid)
  redis.call('ZREM', KEYS[1], wid)
end
return #ids
