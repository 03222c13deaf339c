-- Shared by expire.lua and deregister.lua: an agent going offline leaves the live index for the
-- offline index and is deleted by Redis after the retention (ListAgents stops listing it, GetAgent
-- answers NOT_FOUND; tasks keep its id). Its inbox joins the reclaim set.

-- The offline index score for agents going offline now: `now` (ms), or one past the newest
-- score, so scores are unique and ListAgents pages the offline group without ties.
local function offline_score(offline_index, now)
  local newest = redis.call('ZREVRANGE', offline_index, 0, 0, 'WITHSCORES')
  if newest[2] and tonumber(newest[2]) >= now then return tonumber(newest[2]) + 1 end
  return now
end

-- Agent `id` (hash `agent`) goes offline; `score` from offline_score.
local function take_offline(agent, id, live_index, offline_index, reclaim, now, score, retention_ms)
  redis.call('HSET', agent, 'state', AGENT_STATE_OFFLINE)
  redis.call('PEXPIRE', agent, retention_ms)
  redis.call('ZREM', live_index, id)
  redis.call('ZADD', offline_index, score, id)
  redis.call('ZADD', reclaim, now, id)
end

-- Index entries of agents offline for longer than the retention (their hashes are gone): the
-- index stays as small as the agents that went offline within one retention.
local function prune_offline(offline_index, now, retention_ms)
  redis.call('ZREMRANGEBYSCORE', offline_index, '-inf', '(' .. (now - retention_ms))
end
