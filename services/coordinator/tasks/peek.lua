-- What a scheduling pass reads, in one call (read only but for the promotion: assign.lua
-- re-checks everything it applies): due tasks promoted first (promotelib.lua), the agents'
-- load, then the heads of the pending queues of the capabilities with free slots and not
-- paused, with the task fields an assignment needs.
-- KEYS: due, events, agent_load, paused_queues, then the pending queue of each capability
-- ARGV: prefix, now_ms, promote limit (0: promote nothing), events_maxlen, most free slots per
--   capability, lookahead, then per capability: its name, its agent count, and per agent its
--   id and max_concurrency
-- Returns {tasks promoted, due time of the earliest task still waiting or -1, the agent load
-- (HGETALL), and per capability a flat list, per task its id then its PEEKED_TASK fields
-- (task_fields.py; tasks whose hash is gone are left out)}.
-- A task without labels fits any agent with a free slot, so once `free` of them are read the
-- pass has all it can assign (scheduler.plan takes tasks in order): the rest of the lookahead,
-- there for tasks whose labels match no agent, is not read. An empty pass (nothing pending)
-- costs the three reads of the due set, the load and the queues.
local prefix, now = ARGV[1], tonumber(ARGV[2])
local moved, next_due = 0, '-1'
if tonumber(ARGV[3]) > 0 then
  moved, next_due = promote_due(KEYS[1], KEYS[2], prefix, now, tonumber(ARGV[3]), ARGV[4])
end
local batch, lookahead = tonumber(ARGV[5]), tonumber(ARGV[6])
local LABELS
for i, name in ipairs(PEEKED_TASK) do
  if name == 'labels' then LABELS = i end
end

local raw_load = redis.call('HGETALL', KEYS[3])
local load = {}
for i = 1, #raw_load, 2 do load[raw_load[i]] = tonumber(raw_load[i + 1]) end

-- Per capability: its name, free slots and the ids at the head of its queue.
local caps, waiting, a = {}, {}, 7
for k = 1, #KEYS - 4 do
  local cap, n = ARGV[a], tonumber(ARGV[a + 1])
  local free = 0
  for j = 0, n - 1 do
    local agent_id, max = ARGV[a + 2 + 2 * j], tonumber(ARGV[a + 3 + 2 * j])
    free = free + math.max(0, max - (load[agent_id] or 0))
  end
  a = a + 2 + 2 * n
  free = math.min(free, batch)
  local ids = {}
  if free > 0 then
    ids = redis.call('ZRANGE', KEYS[k + 4], 0, free + lookahead - 1)
    if #ids > 0 then waiting[#waiting + 1] = cap end
  end
  caps[k] = {cap = cap, free = free, ids = ids}
end

local paused = {}
if #waiting > 0 then
  local v = redis.call('HMGET', KEYS[4], unpack(waiting))
  for i, cap in ipairs(waiting) do paused[cap] = v[i] ~= false end
end

local out = {moved, next_due, raw_load}
for k, c in ipairs(caps) do
  local rows, fits_any = {}, 0
  if not paused[c.cap] then
    for _, task_id in ipairs(c.ids) do
      if fits_any >= c.free then break end
      local v = redis.call('HMGET', prefix .. K_TASK .. task_id, unpack(PEEKED_TASK))
      if v[1] then
        rows[#rows + 1] = task_id
        for i = 1, #PEEKED_TASK do rows[#rows + 1] = v[i] end
        local labels = v[LABELS]
        if not labels or labels == '' or labels == '{}' then fits_any = fits_any + 1 end
      end
    end
  end
  out[k + 3] = rows
end
return out
