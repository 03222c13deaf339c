-- Deliver a batch of (task, agent) assignments computed by the scheduler, each only if it
-- still holds (assignlib.lua assign_task: the task is PENDING at the expected attempt, the
-- agent ONLINE with a free slot, flow control lets it go).
-- KEYS: the tasklib context (1..8)
-- ARGV: the tasklib context (1..7), then n, then per assignment an ASSIGN_ROW, read by its
--   ASSIGN_ROW_* indexes (scripts.py
--   AssignRow: task_id, agent_id, attempt, token, envelope)
-- Returns one code per assignment: 1 applied, 0 task no longer pending, 2 agent not online,
-- 3 agent has no free slot, 4 parked on its full concurrency key, 5 cancelled by its
-- concurrency strategy, 6 parked in the due set by a rate limit (flowgate.lua).
local C = context()
local n = tonumber(ARGV[8])
local out = {}
local agents = {}
for i = 0, n - 1 do
  out[#out + 1] = assign_task(C, agents, 8 + i * ASSIGN_ROW_WIDTH, false)
end
return out
