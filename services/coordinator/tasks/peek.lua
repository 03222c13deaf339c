-- Read the heads of pending queues for a scheduling pass, with the task fields an assignment
-- needs, in one call (read only: assign.lua re-checks everything it applies).
-- KEYS: pending queues
-- ARGV: prefix, then per queue how many ids to read
-- Returns per queue a flat list, per task its id then its PEEKED_TASK fields (task_fields.py;
-- tasks whose hash is gone are left out).
local prefix = ARGV[1]
local out = {}
for k = 1, #KEYS do
  local ids = redis.call('ZRANGE', KEYS[k], 0, tonumber(ARGV[k + 1]) - 1)
  local rows = {}
  for _, task_id in ipairs(ids) do
    local v = redis.call('HMGET', prefix .. K_TASK .. task_id, unpack(PEEKED_TASK))
    if v[1] then
      rows[#rows + 1] = task_id
      for i = 1, #PEEKED_TASK do rows[#rows + 1] = v[i] end
    end
  end
  out[k] = rows
end
return out
