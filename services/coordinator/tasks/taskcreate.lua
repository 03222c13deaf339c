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
-- deadline, SUBMITTED event. A task with a due time (due_ms) still ahead is created SCHEDULED
-- instead: it waits in the due set (promote.lua queues it then) and emits TASK_SCHEDULED.
local function create_task(row, payload)
  local prefix, now = ARGV[1], tonumber(ARGV[2])
  local id, capability = row[NEW_TASK_TASK_ID], row[NEW_TASK_CAPABILITY]
  local seq = redis.call('INCR', KEYS[3])
  local due = tonumber(row[NEW_TASK_DUE_MS]) or 0
  local state, event = TASK_STATE_PENDING, EVENT_TYPE_TASK_SUBMITTED
  if due > now then
    state, event = TASK_STATE_SCHEDULED, EVENT_TYPE_TASK_SCHEDULED
  end
  local hash = {'payload', payload, 'state', state, 'attempt', 0, 'seq', seq,
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
  if state == TASK_STATE_SCHEDULED then
    redis.call('ZADD', prefix .. K_DUE, due, id)
  else
    enqueue(prefix, capability, row[NEW_TASK_PRIORITY], seq, id)
  end
  redis.call('ZADD', KEYS[2], seq, id)
  redis.call('ZADD', prefix .. K_TASKS_BY_STATE .. state, seq, id)
  -- Schedule-to-start counts from when the task may start: its due time if delayed.
  local s2s_ms = tonumber(row[NEW_TASK_S2S_MS]) or 0
  if s2s_ms > 0 then
    redis.call('ZADD', KEYS[4], math.max(now, due) + s2s_ms, id)
  end
  emit_event(KEYS[1], ARGV[3], {type = event, ms = now, task_id = id,
    capability = capability, state = state, workflow_id = row[NEW_TASK_WORKFLOW_ID],
    step_id = row[NEW_TASK_STEP_ID]})
end
