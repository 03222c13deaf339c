-- Promotion of due tasks, shared by promote.lua and peek.lua (prepended after taskcreate.lua).

-- Move up to `limit` tasks whose due time has passed from the due set to their pending queue:
-- retries whose backoff passed (already PENDING) and delayed tasks (SCHEDULED: they become
-- PENDING, with a TASK_DUE event). Returns how many, and the due time (ms) of the earliest
-- task still waiting, or '-1'.
local function promote_due(due, events, prefix, now, limit, maxlen)
  -- One read finds both the due tasks and the first one still waiting (its score).
  local head = redis.call('ZRANGE', due, 0, limit, 'WITHSCORES')
  local ids, next_due = {}, '-1'
  for i = 1, #head, 2 do
    if #ids < limit and tonumber(head[i + 1]) <= now then
      ids[#ids + 1] = head[i]
    else
      next_due = head[i + 1]
      break
    end
  end
  for _, task_id in ipairs(ids) do
    redis.call('ZREM', due, task_id)
    local tk = prefix .. K_TASK .. task_id
    local t = redis.call('HMGET', tk, 'state', 'capability', 'priority', 'seq', 'workflow_id',
      'step_id', 'fairness_key', 'fairness_weight', 'fair_tag', 'tenant')
    local state = tonumber(t[1])
    if state == TASK_STATE_SCHEDULED then
      redis.call('HSET', tk, 'state', TASK_STATE_PENDING)
      redis.call('ZREM', prefix .. K_TASKS_BY_STATE .. TASK_STATE_SCHEDULED, task_id)
      redis.call('ZADD', prefix .. K_TASKS_BY_STATE .. TASK_STATE_PENDING, t[4], task_id)
      emit_event(events, maxlen, {type = EVENT_TYPE_TASK_DUE, ms = now,
        task_id = task_id, capability = t[2], state = TASK_STATE_PENDING, workflow_id = t[5],
        step_id = t[6], tenant = t[10]})
      state = TASK_STATE_PENDING
    end
    if state == TASK_STATE_PENDING then
      local tag = enqueue(prefix, {id = task_id, capability = t[2], priority = t[3],
        fairness_key = t[7], fairness_weight = t[8], fair_tag = t[9]})
      if not t[9] then
        redis.call('HSET', tk, 'fair_tag', tag)  -- queued for the first time (a delayed task)
      end
    end
  end
  return #ids, next_due
end
