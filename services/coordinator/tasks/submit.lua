-- Create a batch of tasks atomically (taskcreate.lua create_task), then assign at once the new
-- tasks the coordinator offered an agent (eager dispatch: assignlib.lua assign_task, every
-- check of assign.lua made here too).
-- A repeated request_id returns the task it created before instead of a new one.
-- An offer is tried only where nothing waits ahead of its task: no task has come due without
-- being queued yet (promote.lua), the capability's queue was empty before this batch and is not
-- paused. Its tasks are then tried in queue order (priority, fair turns), as a scheduling pass
-- takes them, until one is not assigned: that one and those behind it stay PENDING, and flow
-- control only probes (the scheduler parks a task held back, as without an offer).
-- When a capability's tasks in the batch share one priority and fairness key, queue order is
-- batch order: each is assigned as it is created, without the queue entry, fair turn and
-- PENDING index entry a scheduling pass would add and take away again, nor a read of the hash
-- just written (one submitted task: 11 Redis commands fewer); the first one not assigned is
-- queued as create_task would have.
-- KEYS: the tasklib context (1..8), tasks_index, task_seq, paused_queues
-- ARGV: the tasklib context (1..7), request_ttl_s, n, rows, then the n payloads, then m and m
--   offers, each an ASSIGN_ROW (scripts.py AssignRow, attempt 1);
--   rows is a JSON array of n rows: the NEW_TASK values (NEW_TASK_* indexes), then the request
--   key ('' for none)
--   (built by scripts.Submit)
-- Returns {per row the id created or the earlier one of its request_id, per offer its assign
-- code (-1: not tried), per offer its agent's load after the call (-1: not read)}.
local C = context()
CREATE_INDEX, CREATE_SEQ, CREATE_STARTS = 9, 10, 8
local ttl, n = ARGV[8], tonumber(ARGV[9])
local rows = cjson.decode(ARGV[10])
local m = tonumber(ARGV[11 + n])
local offer_at = {}  -- task id -> ARGV offset of its offer
for j = 0, m - 1 do
  local b = 11 + n + j * ASSIGN_ROW_WIDTH
  offer_at[ARGV[b + ASSIGN_ROW_TASK_ID]] = b
end
local open, caps = {}, {}
if m > 0 and #redis.call('ZRANGEBYSCORE', C.due, '-inf', C.now, 'LIMIT', 0, 1) == 0 then
  for i = 1, n do
    local cap = rows[i][NEW_TASK_CAPABILITY]
    if open[cap] == nil and offer_at[rows[i][NEW_TASK_TASK_ID]] then
      open[cap] = redis.call('ZCARD', C.prefix .. K_PENDING .. cap) == 0
        and redis.call('HEXISTS', KEYS[11], cap) == 0
      if open[cap] then caps[#caps + 1] = cap end
    end
  end
end
-- How each open capability's offered tasks are tried: 'direct' (as they are created) when its
-- rows share a priority and fairness key, else 'queue' (in queue order once all are created).
local mode, order_of = {}, {}
for i = 1, n do
  local cap = rows[i][NEW_TASK_CAPABILITY]
  if open[cap] then
    local order = tostring(rows[i][NEW_TASK_PRIORITY]) .. ' '
      .. tostring(rows[i][NEW_TASK_FAIRNESS_KEY])
    if order_of[cap] == nil then
      order_of[cap], mode[cap] = order, 'direct'
    elseif order_of[cap] ~= order then
      mode[cap] = 'queue'
    end
  end
end
local out, codes, agents = {}, {}, {}
reserve_seqs(n)
for i = 1, n do
  local r = rows[i]
  local task_id = r[NEW_TASK_TASK_ID]
  local request_key = r[NEW_TASK_WIDTH + 1]
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
    local cap, b = r[NEW_TASK_CAPABILITY], offer_at[task_id]
    if mode[cap] == 'direct' and b then
      local seq, created = create_task(r, ARGV[10 + i], true)
      codes[task_id] = assign_task(C, agents, b, true, created)
      if codes[task_id] ~= 1 then
        queue_created(r, seq)
        mode[cap] = 'stopped'  -- those behind it wait for it
      end
    else
      -- Not offered: it heads the queue, unless it is delayed (it waits in the due set).
      if mode[cap] == 'direct' and (tonumber(r[NEW_TASK_DUE_MS]) or 0) <= C.now then
        mode[cap] = 'stopped'
      end
      create_task(r, ARGV[10 + i])
    end
    out[#out + 1] = task_id
  end
end
for _, cap in ipairs(caps) do
  if mode[cap] == 'queue' then
    -- The queue holds tasks of this batch alone: it was empty before.
    for _, id in ipairs(redis.call('ZRANGE', C.prefix .. K_PENDING .. cap, 0, -1)) do
      local b = offer_at[id]
      if not b then break end
      codes[id] = assign_task(C, agents, b, true)
      if codes[id] ~= 1 then break end
    end
  end
end
local offer_codes, loads = {}, {}
for j = 0, m - 1 do
  local b = 11 + n + j * ASSIGN_ROW_WIDTH
  local a = agents[ARGV[b + ASSIGN_ROW_AGENT_ID]]
  offer_codes[j + 1] = codes[ARGV[b + ASSIGN_ROW_TASK_ID]] or -1
  loads[j + 1] = a and a.load or -1
end
return {out, offer_codes, loads}
