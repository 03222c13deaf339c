-- Task creation and the pending queue order, shared by submit.lua, workflows/advance.lua,
-- promote.lua and tasklib.lua (prepended after the prelude). Scripts that create tasks take
-- the same leading KEYS and ARGV (see creation_keys/creation_args in scripts.py):
--   KEYS[1..4]: events, tasks_index, task_seq, start_deadlines
--   ARGV[1..3]: prefix, now_ms, events_maxlen
-- A script that takes the tasklib context instead (its KEYS[1] and ARGV[1..3] are the same)
-- points create_task at its own places of the other three keys (submit.lua).
local CREATE_INDEX, CREATE_SEQ, CREATE_STARTS = 2, 3, 4

-- The pending queue of a capability is one sorted set in fair order: priority first (higher
-- first), then a virtual time (`tag`) that takes turns across fairness keys (weighted fair
-- queueing, computed at enqueue time so peek.lua reads the fair order with one ZRANGE).
-- Per priority band the capability's fair hash (keys.fair) holds `v<band>`, the tag of the
-- latest task assigned, and `k<band>:<key>`, the tag of the key's last queued task. A new task
-- of a key goes FAIR_ROUND / weight after the later of the two, so a key that arrives behind
-- another's backlog of thousands starts at the head, and weight w takes w turns per round.
-- With one key this is enqueue order, which is seq order: the queue behaves as it did before
-- fairness. The hash is deleted whenever the queue empties, so tags stay small; a tag is at
-- most 2^44 - 1 and 101 * 2^44 is below 2^53, so the score is an exact double.
local FAIR_BAND = 17592186044416
local FAIR_TAG_MAX = FAIR_BAND - 1
local FAIR_ROUND = 1000

local function pending_score(priority, tag)
  return (100 - tonumber(priority)) * FAIR_BAND + tag
end

local function fair_fields(t)
  local band = tostring(tonumber(t.priority) or 0)
  return band, 'v' .. band, 'k' .. band .. ':' .. (t.fairness_key or '')
end

-- The fair state this script call has read and written, so a batch (a submit of one key's
-- tasks, an assignment pass) reads each hash field once: a band's virtual time by
-- `<hash> <v field>`, a key's last tag by `<hash> <k field>` (false: the key has none).
local fair_v, fair_last = {}, {}

local function fair_state(fair, t)
  local band, v_field, k_field = fair_fields(t)
  local vid, kid = fair .. ' ' .. v_field, fair .. ' ' .. k_field
  if fair_v[vid] == nil or fair_last[kid] == nil then
    local got = redis.call('HMGET', fair, v_field, k_field)
    fair_v[vid], fair_last[kid] = tonumber(got[1]) or 0, tonumber(got[2]) or false
  end
  return band, vid, kid, v_field, k_field
end

-- Queue a PENDING task `t` (id, capability, priority, fairness_key, fairness_weight, and
-- fair_tag when it was queued before) and return its tag. A task queued before (a retry, a
-- reclaim) goes back to its old place, or to the head of its band when the fair state started
-- over since: never behind tasks that came after it, as when the queue was ordered by age.
-- The task hash keeps the tag (`fair_tag`; create_task writes it with the rest).
local function enqueue(prefix, t)
  local fair = prefix .. K_FAIR .. t.capability
  local band, vid, kid, _, k_field = fair_state(fair, t)
  local tag = tonumber(t.fair_tag)
  if tag then
    if tag > fair_v[vid] then
      tag = fair_v[vid]
      redis.call('HSET', prefix .. K_TASK .. t.id, 'fair_tag', tag)
    end
  else
    local cost = math.floor(FAIR_ROUND / math.max(1, tonumber(t.fairness_weight) or 1))
    tag = math.min(math.max(fair_v[vid], fair_last[kid] or 0) + cost, FAIR_TAG_MAX)
    fair_last[kid] = tag
    redis.call('HSET', fair, k_field, tag)
  end
  redis.call('ZADD', prefix .. K_PENDING .. t.capability, pending_score(band, tag), t.id)
  t.fair_tag = tag
  return tag
end

-- Take task `t` (as for enqueue, with its fair_tag) out of its pending queue: `served` when it
-- is assigned, which moves its band's virtual time on to its tag (a cancel or a timeout does
-- not: the keys behind it keep their turn). Returns false when the task was not queued. The
-- one way out of the pending queue, as enqueue is the one way in.
local function dequeue(prefix, t, served)
  local queue = prefix .. K_PENDING .. t.capability
  if redis.call('ZREM', queue, t.id) == 0 then return false end
  local fair = prefix .. K_FAIR .. t.capability
  if redis.call('ZCARD', queue) == 0 then
    redis.call('DEL', fair)
    fair_v, fair_last = {}, {}
    return true
  end
  local tag = tonumber(t.fair_tag)
  if not tag then return true end  -- queued before fairness: it holds no turn
  local _, vid, kid, v_field, k_field = fair_state(fair, t)
  if served and tag > fair_v[vid] then
    fair_v[vid] = tag
    redis.call('HSET', fair, v_field, tag)
  end
  if fair_last[kid] == tag then
    fair_last[kid] = false
    redis.call('HDEL', fair, k_field)  -- the key's last task: forget the key
  end
  return true
end

-- Sequence numbers reserved by reserve_seqs, handed out by create_task: [seq_next, seq_last].
local seq_next, seq_last = 1, 0

-- Reserve `n` sequence numbers with one INCRBY, for a batch about to create up to `n` tasks
-- (a row answered by an earlier request_id leaves a gap: seqs order tasks, they need not be
-- dense).
local function reserve_seqs(n)
  if n > 0 then
    seq_last = tonumber(redis.call('INCRBY', KEYS[CREATE_SEQ], n))
    seq_next = seq_last - n + 1
  end
end

-- NewTask fields written only when they say something: at their default ('' or 0, labels
-- '{}') they are left out, as tasklib.lua drop_defaults leaves them out of an ended task, and
-- every reader takes a missing one as its default. A hash of fewer fields is cheaper for every
-- script that reads or writes it.
local function is_default_field(name, value)
  if value == '' or value == 0 or value == '0' then
    return name ~= 'priority' and name ~= 'max_attempts' and name ~= 'fairness_key'
      and name ~= 'fairness_weight' and name ~= 'capability' and name ~= 'trace_id'
  end
  return name == 'labels' and value == '{}'
end

-- Create a PENDING task: its hash (the NEW_TASK fields of `row`, an array in NEW_TASK order, read
-- by the NEW_TASK_* indexes; a nil field means its default), pending queue entry, indexes, start
-- deadline, SUBMITTED event. A task with a due time (due_ms) still ahead is created SCHEDULED
-- instead: it waits in the due set (promote.lua queues it then) and emits TASK_SCHEDULED.
-- With `unqueued` a PENDING task is neither queued nor in the by-state index: the caller assigns
-- it at once (submit.lua) or else queues it with queue_created. Returns the task's seq, and for
-- an unqueued task the task as load_task would read it (no read: it was just written).
local function create_task(row, payload, unqueued)
  local prefix, now = ARGV[1], tonumber(ARGV[2])
  local id, capability = row[NEW_TASK_TASK_ID], row[NEW_TASK_CAPABILITY]
  local seq
  if seq_next <= seq_last then
    seq, seq_next = seq_next, seq_next + 1
  else
    seq = redis.call('INCR', KEYS[CREATE_SEQ])
  end
  local due = tonumber(row[NEW_TASK_DUE_MS]) or 0
  local state, event = TASK_STATE_PENDING, EVENT_TYPE_TASK_SUBMITTED
  if due > now then
    state, event = TASK_STATE_SCHEDULED, EVENT_TYPE_TASK_SCHEDULED
  end
  local hash = {'payload', payload, 'state', state, 'attempt', 0, 'seq', seq,
    'create_ms', now}
  local n = 10
  unqueued = unqueued and state == TASK_STATE_PENDING
  if state == TASK_STATE_PENDING and not unqueued then
    -- A delayed task is queued (and takes its fair turn) when promote.lua finds it due.
    hash[11] = 'fair_tag'
    hash[12] = enqueue(prefix, {id = id, capability = capability,
      priority = row[NEW_TASK_PRIORITY], fairness_key = row[NEW_TASK_FAIRNESS_KEY],
      fairness_weight = row[NEW_TASK_FAIRNESS_WEIGHT]})
    n = 12
  elseif unqueued then
    -- It heads its queue, which was empty: a retry of it goes back to the head (enqueue).
    hash[11], hash[12] = 'fair_tag', 0
    n = 12
  end
  -- The id comes first (task_fields.NewTask): it names the hash and is no field of it.
  for i = NEW_TASK_TASK_ID + 1, NEW_TASK_WIDTH do
    local value = row[i]
    if value ~= nil and not is_default_field(NEW_TASK[i], value) then
      hash[n + 1], hash[n + 2] = NEW_TASK[i], value
      n = n + 2
    end
  end
  redis.call('HSET', prefix .. K_TASK .. id, unpack(hash, 1, n))
  local tenant = row[NEW_TASK_TENANT]
  if tenant and tenant ~= '' then
    redis.call('ZADD', prefix .. K_TENANT_TASKS .. tenant, seq, id)
  end
  if state == TASK_STATE_SCHEDULED then
    redis.call('ZADD', prefix .. K_DUE, due, id)
  end
  -- No all-tasks index (KEYS[CREATE_INDEX], kept in the layout, is no longer written): the
  -- per-state indexes together hold every task once (store.py list merges them).
  if not unqueued then
    redis.call('ZADD', prefix .. K_TASKS_BY_STATE .. state, seq, id)
  end
  -- Schedule-to-start counts from when the task may start: its due time if delayed.
  local s2s_ms = tonumber(row[NEW_TASK_S2S_MS]) or 0
  if s2s_ms > 0 then
    redis.call('ZADD', KEYS[CREATE_STARTS], math.max(now, due) + s2s_ms, id)
  end
  emit_event(KEYS[1], ARGV[3], {type = event, ms = now, task_id = id,
    capability = capability, state = state, workflow_id = row[NEW_TASK_WORKFLOW_ID],
    step_id = row[NEW_TASK_STEP_ID], tenant = tenant})
  if not unqueued then return seq end
  -- The task as tasklib.lua load_task would read it back (its caller assigns it at once).
  local t = {key = prefix .. K_TASK .. id, id = id}
  for i = 1, n, 2 do t[hash[i]] = hash[i + 1] end
  t.payload = nil
  return seq, t
end

-- Queue a task create_task made `unqueued` (its assignment did not go through), as create_task
-- would have: its fair turn, pending queue entry and by-state index entry.
local function queue_created(row, seq)
  local prefix, id = ARGV[1], row[NEW_TASK_TASK_ID]
  local tag = enqueue(prefix, {id = id, capability = row[NEW_TASK_CAPABILITY],
    priority = row[NEW_TASK_PRIORITY], fairness_key = row[NEW_TASK_FAIRNESS_KEY],
    fairness_weight = row[NEW_TASK_FAIRNESS_WEIGHT]})
  redis.call('HSET', prefix .. K_TASK .. id, 'fair_tag', tag)
  redis.call('ZADD', prefix .. K_TASKS_BY_STATE .. TASK_STATE_PENDING, seq, id)
end
