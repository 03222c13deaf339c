-- Reclaim inbox entries of an agent that went offline: each entry's attempt, if still
-- current, is lost and re-queued at once as the next attempt (or dead-lettered past its
-- budget); the entry is acknowledged and deleted. With n = 0, deletes the inbox if it is
-- empty and forgets the agent (load, reclaim set).
-- KEYS: the tasklib context (1..8), then inbox, reclaim_agents
-- ARGV: the tasklib context (1..7), then group, agent_id, jitter, n, then per entry a
--   RECLAIM_ROW, read by its RECLAIM_ROW_* indexes (scripts.py ReclaimRow: entry_id, task_id,
--   attempt)
-- Returns the number of attempts re-queued or failed (or, with n = 0, 1 when the agent is done).
local C = context()
local inbox, reclaim_set = KEYS[9], KEYS[10]
local group, agent_id, jitter, n = ARGV[8], ARGV[9], tonumber(ARGV[10]), tonumber(ARGV[11])
if n == 0 then
  if redis.call('EXISTS', inbox) == 1 and redis.call('XLEN', inbox) > 0 then return 0 end
  redis.call('DEL', inbox)
  redis.call('HDEL', C.load, agent_id)
  redis.call('ZREM', reclaim_set, agent_id)
  return 1
end
local lost = 0
for i = 0, n - 1 do
  local b = 11 + i * RECLAIM_ROW_WIDTH
  local entry_id, task_id = ARGV[b + RECLAIM_ROW_ENTRY_ID], ARGV[b + RECLAIM_ROW_TASK_ID]
  local attempt = ARGV[b + RECLAIM_ROW_ATTEMPT]
  redis.call('XACK', inbox, group, entry_id)
  redis.call('XDEL', inbox, entry_id)
  if task_id ~= '' then
    jitter = (jitter + 0.6180339887) % 1
    local r = lose_attempt(C, task_id, attempt, 'agent ' .. agent_id .. ' went offline',
      EVENT_TYPE_TASK_RECLAIMED, jitter, true)
    if r then lost = lost + 1 end
  end
end
return lost
