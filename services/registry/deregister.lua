-- Take an agent offline for good; a second call for an offline agent changes nothing.
-- The agent joins the reclaim set: the coordinator re-queues what is left in its inbox.
-- KEYS: agent, leases, live_agents, offline_agents, agent_changes, events, reclaim_agents
-- ARGV: agent_id, token_sha256, now_ms, changes_maxlen, change_removed, events_maxlen,
--       retention_ms
-- Returns 'OK', 'ALREADY_OFFLINE', 'NOT_FOUND' or 'BAD_TOKEN'.
local h = redis.call('HMGET', KEYS[1], 'token_sha256', 'state')
if not h[1] then return 'NOT_FOUND' end
if h[1] ~= ARGV[2] then return 'BAD_TOKEN' end
redis.call('ZREM', KEYS[2], ARGV[1])
if tonumber(h[2]) == AGENT_STATE_OFFLINE then return 'ALREADY_OFFLINE' end
local now, retention_ms = tonumber(ARGV[3]), tonumber(ARGV[7])
take_offline(KEYS[1], ARGV[1], KEYS[3], KEYS[4], KEYS[7], now, offline_score(KEYS[4], now),
  retention_ms)
prune_offline(KEYS[4], now, retention_ms)
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', 'agent_id', ARGV[1], 'change', ARGV[5])
emit_event(KEYS[6], ARGV[6], {type=EVENT_TYPE_AGENT_DEREGISTERED, ms=ARGV[3], agent_id=ARGV[1]})
return 'OK'
