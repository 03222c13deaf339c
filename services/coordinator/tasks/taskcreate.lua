-- Task creation and the pending queue order, shared by submit.lua, workflows/advance.lua,
-- promote.lua and tasklib.lua (prepended after the prelude). Scripts that create tasks take
-- the same leading KEYS and ARGV (see creation_keys/creation_args in scripts.py):
--   KEYS[1..4]: events, tasks_index, task_seq, start_deadlines
--   ARGV[1..3]: prefix, now_ms, events_maxlen

-- Priority first (higher first), then age: seq stays below 2^44, and 101 * 2^44 is below
-- 2^53, so the score is an exact double.
local function pending_score(priority, seq)
  return (100 - tonumber(priority)) * 17592186044416 + tonumber(seq)
end

local function enqueue(prefix, capability, priority, seq, task_id)
  redis.call('ZADD', prefix .. K_PENDING .. capability, pending_score(priority, seq), task_id)
end

-- Create a PENDING task: its hash (the NEW_TASK fields of `row`, an array in NEW_TASK order, read
-- by the NEW_TASK_* indexes; a nil field means its default), pending queue entry, indexes, start
-- deadline, SUBMITTED event.
local function create_task(row, payload)
  local prefix, now = ARGV[1], tonumber(ARGV[2])
  local id, capability = row[NEW_TASK_TASK_ID], row[NEW_TASK_CAPABILITY]
  local seq = redis.call('INCR', KEYS[3])
  local hash = {'payload', payload, 'state', TASK_STATE_PENDING, 'attempt', 0, 'seq', seq,
    'create_ms', now}
  local n = 10
  -- The id comes first (task_fields.NewTask): it names the hash and is no field of it.
  for i = NEW_TASK_TASK_ID + 1, NEW_TASK_WIDTH do
    local value = row[i]
    if value ~= nil then
      hash[n + 1], hash[n + 2] = NEW_TASK[i], value
      n = n + 2
    end
  end
  redis.call('HSET', prefix .. K_TASK .. id, unpack(hash, 1, n))
  local tenant = row[NEW_TASK_TENANT]
  if tenant and tenant ~= '' then
    redis.call('ZADD', prefix .. K_TENANT_TASKS .. tenant, seq, id)
  end
  enqueue(prefix, capability, row[NEW_TASK_PRIORITY], seq, id)
  redis.call('ZADD', KEYS[2], seq, id)
  redis.call('ZADD', prefix .. K_TASKS_BY_STATE .. TASK_STATE_PENDING, seq, id)
  local s2s_ms = tonumber(row[NEW_TASK_S2S_MS]) or 0
  if s2s_ms > 0 then
    redis.call('ZADD', KEYS[4], now + s2s_ms, id)
  end
  emit_event(KEYS[1], ARGV[3], {type = EVENT_TYPE_TASK_SUBMITTED, ms = now, task_id = id,
    capability = capability, state = TASK_STATE_PENDING, workflow_id = row[NEW_TASK_WORKFLOW_ID],
    step_id = row[NEW_TASK_STEP_ID], tenant = tenant})
end
