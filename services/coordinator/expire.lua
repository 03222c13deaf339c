-- Retention: delete terminal tasks that ended before the cutoff, with their index entries.
-- KEYS: finished, tasks_index
-- ARGV: prefix, cutoff_ms, limit
local prefix, cutoff, limit = ARGV[1], ARGV[2], ARGV[3]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff, 'LIMIT', 0, limit)
for _, task_id in ipairs(ids) do
  local tk = prefix .. 'task:' .. task_id
  local state = redis.call('HGET', tk, 'state')
  if state then
    redis.call('ZREM', prefix .. 'tasks:' .. state, task_id)
  end
  redis.call('DEL', tk)
  redis.call('ZREM', KEYS[2], task_id)
  redis.call('ZREM', KEYS[1], task_id)
end
return #ids
