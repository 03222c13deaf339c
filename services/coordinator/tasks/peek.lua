-- Read the heads of pending queues for a scheduling pass, with the task fields an assignment
-- needs, in one call (read only: assign.lua re-checks everything it applies).
-- KEYS: pending queues
-- ARGV: prefix, then per queue how many ids to read at most and how many free slots it has
-- Returns per queue a flat list, per task its id then its PEEKED_TASK fields (task_fields.py;
-- tasks whose hash is gone are left out).
-- A task without labels fits any agent with a free slot, so once `free` of them are read the
-- pass has all it can assign (scheduler.plan takes tasks in order): the rest of the lookahead,
-- there for tasks whose labels match no agent, is not read.
local prefix = ARGV[1]
local LABELS
for i, name in ipairs(PEEKED_TASK) do
  if name == 'labels' then LABELS = i end
end
local out = {}
for k = 1, #KEYS do
  local ids = redis.call('ZRANGE', KEYS[k], 0, tonumber(ARGV[2 * k]) - 1)
  local free = tonumber(ARGV[2 * k + 1])
  local rows, fits_any = {}, 0
  for _, task_id in ipairs(ids) do
    if fits_any >= free then break end
    local v = redis.call('HMGET', prefix .. K_TASK .. task_id, unpack(PEEKED_TASK))
    if v[1] then
      rows[#rows + 1] = task_id
      for i = 1, #PEEKED_TASK do rows[#rows + 1] = v[i] end
      local labels = v[LABELS]
      if not labels or labels == '' or labels == '{}' then fits_any = fits_any + 1 end
    end
  end
  out[k] = rows
end
return out
