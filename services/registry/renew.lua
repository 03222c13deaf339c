-- Renew the attempt leases of the tasks an agent says it is running (its heartbeat). A task
-- that is no longer an in-flight attempt of this agent (cancelled, finished, reclaimed and
-- given to another agent, or unknown) is returned so the agent stops its handler.
-- KEYS: task_leases
-- ARGV: prefix, agent_id, now_ms, default_lease_ms, then the task ids
-- Returns the ids the agent should cancel.
local prefix, agent_id, now, default_ms = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  local t = redis.call('HMGET', prefix .. K_TASK .. id, 'state', 'agent_id', 'hb_ms')
  local state = tonumber(t[1])
  if (state == TASK_STATE_ASSIGNED or state == TASK_STATE_RUNNING) and t[2] == agent_id then
    local ms = tonumber(t[3]) or 0
    if ms <= 0 then ms = default_ms end
    redis.call('ZADD', KEYS[1], now + ms, id)
  else
    out[#out + 1] = id
  end
end
return out
