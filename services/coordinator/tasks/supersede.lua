-- CANCEL_IN_PROGRESS at submission: for each new task of that strategy still PENDING, cancel
-- the older holders and waiters of its concurrency key (flowgate.lua supersede). assign.lua
-- does the same when the task comes up, so a crash between submit and this call loses nothing.
-- KEYS: the tasklib context (1..8)
-- ARGV: the tasklib context (1..7), then the task ids
-- Returns how many tasks were cancelled.
local C = context()
local n = 0
for i = 8, #ARGV do
  local t = load_task(C, ARGV[i])
  if t.state == TASK_STATE_PENDING and has(t.ckey)
      and tonumber(t.cstrategy) == CONCURRENCY_STRATEGY_CANCEL_IN_PROGRESS then
    n = n + supersede(C, t)
  end
end
return n
