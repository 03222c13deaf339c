-- Flow control bookkeeping shared by every tasklib script (prepended between taskcreate.lua
-- and tasklib.lua): concurrency key holders and waiters, rate limit waiters
-- (docs/flow-control.md). Tasks without a key or rate units never reach these functions.

-- A holder of the task's concurrency key ended its attempt: free its place and move the
-- first waiter of the key still PENDING back to its pending queue (at most one: one place
-- was freed; a waiter that finds the key full again is parked again).
local function release_key(prefix, t)
  if redis.call('SREM', prefix .. K_CONC_HOLDERS .. t.ckey, t.id) == 0 then return end
  local wait = prefix .. K_CONC_WAIT .. t.ckey
  while true do
    local head = redis.call('ZRANGE', wait, 0, 0)[1]
    if not head then return end
    redis.call('ZREM', wait, head)
    local tk = prefix .. K_TASK .. head
    local v = redis.call('HMGET', tk, 'state', 'capability', 'priority', 'fairness_key',
      'fairness_weight', 'fair_tag')
    if tonumber(v[1]) == TASK_STATE_PENDING then
      redis.call('HSET', tk, 'waiting', '')
      enqueue(prefix, {id = head, capability = v[2], priority = v[3], fairness_key = v[4],
        fairness_weight = v[5], fair_tag = v[6]})
      return
    end
  end
end

local function has(value)
  return value and value ~= ''
end

-- A PENDING task leaves for good (cancelled, timed out): forget it where flow control parked it.
local function unpark(prefix, t)
  if has(t.ckey) then
    redis.call('ZREM', prefix .. K_CONC_WAIT .. t.ckey, t.id)
  end
  if has(t.rate) then
    for name, _ in pairs(cjson.decode(t.rate)) do
      redis.call('ZREM', prefix .. K_RATE_WAITING .. name, t.id)
    end
  end
end
