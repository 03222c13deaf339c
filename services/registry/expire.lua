-- Take agents whose lease ran out offline. The expiry is re-checked here, so a heartbeat that
-- renewed the lease meanwhile, or a second registry sweeping at the same time, changes nothing.
-- Each agent taken offline joins the reclaim set: the coordinator re-queues its inbox.
-- KEYS: leases, live_agents, offline_agents, agent_changes, events, reclaim_agents, then one
--       agent hash per id (KEYS[7..])
-- ARGV: now_ms, changes_maxlen, change_removed, events_maxlen, retention_ms, then the ids
--       (ARGV[6..], in the order of their hashes)
-- Returns the ids taken offline.
local now, retention_ms = tonumber(ARGV[1]), tonumber(ARGV[5])
local score = offline_score(KEYS[3], now)
local out = {}
for i = 7, #KEYS do
  local id = ARGV[i - 1]
  local lease = redis.call('ZSCORE', KEYS[1], id)
  if lease and tonumber(lease) < now then
    redis.call('ZREM', KEYS[1], id)
    local state = redis.call('HGET', KEYS[i], 'state')
    if state and tonumber(state) ~= AGENT_STATE_OFFLINE then
      take_offline(KEYS[i], id, KEYS[2], KEYS[3], KEYS[6], now, score, retention_ms)
      score = score + 1
      redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*', 'agent_id', id, 'change', ARGV[3])
      emit_event(KEYS[5], ARGV[4], {type=EVENT_TYPE_AGENT_OFFLINE, ms=ARGV[1], agent_id=id})
      out[#out + 1] = id
    end
  end
end
if #out > 0 then prune_offline(KEYS[3], now, retention_ms) end
return out
