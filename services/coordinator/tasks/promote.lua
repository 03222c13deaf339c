-- Move tasks whose retry backoff has passed from the due set back to their pending queue.
-- KEYS: due
-- ARGV: prefix, now_ms, limit
-- Returns {tasks moved, due time (ms) of the earliest task still waiting, or -1}.
local prefix, now, limit = ARGV[1], ARGV[2], ARGV[3]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
for _, task_id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], task_id)
  local t = redis.call('HMGET', prefix .. K_TASK .. task_id, 'state', 'capability', 'priority',
    'fairness_key', 'fairness_weight', 'fair_tag')
  if tonumber(t[1]) == TASK_STATE_PENDING then
    enqueue(prefix, {id = task_id, capability = t[2], priority = t[3], fairness_key = t[4],
      fairness_weight = t[5], fair_tag = t[6]})
  end
end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#ids, head[2] or '-1'}
