-- Take agents whose lease ran out offline. The expiry is re-checked here, so a heartbeat that
-- renewed the lease meanwhile, or a second registry sweeping at the same time, changes nothing.
-- Each agent taken offline joins the reclaim set: the coordinator re-queues its inbox.
-- KEYS: leases, agent_changes, events, reclaim_agents, then one agent hash per id (KEYS[5..])
-- ARGV: now_ms, changes_maxlen, change_removed, events_maxlen, ttl_seconds, then the ids
--       (ARGV[6..], in the order of their hashes)
-- Returns the ids taken offline.
local now = tonumber(ARGV[1])
local out = {}
for i = 5, #KEYS do
  local id = ARGV[i + 1]
  local score = redis.call('ZSCORE', KEYS[1], id)
  if score and tonumber(score) < now then
    redis.call('ZREM', KEYS[1], id)
    local state = redis.call('HGET', KEYS[i], 'state')
    if state and tonumber(state) ~= AGENT_STATE_OFFLINE then
      redis.call('HSET', KEYS[i], 'state', AGENT_STATE_OFFLINE)
      redis.call('EXPIRE', KEYS[i], ARGV[5])
      redis.call('ZADD', KEYS[4], ARGV[1], id)
      redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'agent_id', id, 'change', ARGV[3])
      emit_event(KEYS[3], ARGV[4], {type=EVENT_TYPE_AGENT_OFFLINE, ms=ARGV[1], agent_id=id})
      out[#out + 1] = id
    end
  end
end
return out
