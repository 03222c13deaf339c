-- Create a batch of tasks atomically: hash, pending queue, indexes, SUBMITTED event.
-- A repeated request_id returns the task it created before instead of a new one.
-- KEYS: tasks_index, task_seq, events, start_deadlines
-- ARGV: prefix, now_ms, events_maxlen, request_ttl_s, n, rows, then the n payloads;
--   rows is a JSON array of n arrays of 15 strings: task_id, capability, priority,
--   max_attempts, labels_json, request_id, request_key, timeout_ms, trace_id, workflow_id,
--   step_id, schedule_to_start_ms, heartbeat_timeout_ms, backoff_ms, backoff_max_ms
--   (the last four 0 for the defaults)
local prefix, now, maxlen, ttl, n = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[5])
local rows = cjson.decode(ARGV[6])
local out = {}
for i = 1, n do
  local r = rows[i]
  local task_id, cap, payload = r[1], r[2], ARGV[6 + i]
  local priority, max_attempts, labels = tonumber(r[3]), r[4], r[5]
  local request_id, request_key, timeout_ms, trace_id = r[6], r[7], r[8], r[9]
  local workflow_id, step_id = r[10], r[11]
  local s2s_ms, hb_ms = tonumber(r[12]), r[13]
  local backoff_ms, backoff_max_ms = r[14], r[15]
  local existing = false
  if request_key ~= '' then
    existing = redis.call('GET', request_key)
  end
  if existing then
    out[#out + 1] = existing
  else
    if request_key ~= '' then
      redis.call('SET', request_key, task_id, 'EX', ttl)
    end
    local seq = redis.call('INCR', KEYS[2])
    redis.call('HSET', prefix .. 'task:' .. task_id,
      'capability', cap, 'payload', payload, 'state', TASK_STATE_PENDING, 'attempt', 0,
      'max_attempts', max_attempts, 'priority', priority, 'labels', labels,
      'request_id', request_id, 'seq', seq, 'create_ms', now, 'timeout_ms', timeout_ms,
      'trace_id', trace_id, 'workflow_id', workflow_id, 'step_id', step_id,
      's2s_ms', s2s_ms, 'hb_ms', hb_ms, 'backoff_ms', backoff_ms, 'backoff_max_ms', backoff_max_ms)
    redis.call('ZADD', prefix .. 'pending:' .. cap, (100 - priority) * 17592186044416 + seq, task_id)
    redis.call('ZADD', KEYS[1], seq, task_id)
    redis.call('ZADD', prefix .. 'tasks:' .. TASK_STATE_PENDING, seq, task_id)
    if s2s_ms > 0 then
      redis.call('ZADD', KEYS[4], now + s2s_ms, task_id)
    end
    emit_event(KEYS[3], maxlen, {type = EVENT_TYPE_TASK_SUBMITTED, ms = now, task_id = task_id,
      capability = cap, state = TASK_STATE_PENDING, workflow_id = workflow_id, step_id = step_id})
    out[#out + 1] = task_id
  end
end
return out
