-- Take an agent offline for good; a second call for an offline agent changes nothing.
-- The agent joins the reclaim set: the coordinator re-queues what is left in its inbox.
-- KEYS: agent, leases, agent_changes, events, reclaim_agents
-- ARGV: agent_id, token_sha256, now_ms, changes_maxlen, change_removed, events_maxlen, ttl_seconds
-- Returns 'OK', 'ALREADY_OFFLINE', 'NOT_FOUND' or 'BAD_TOKEN'.
local h = redis.call('HMGET', KEYS[1], 'token_sha256', 'state')
if not h[1] then return 'NOT_FOUND' end
if h[1] ~= ARGV[2] then return 'BAD_TOKEN' end
redis.call('ZREM', KEYS[2], ARGV[1])
if tonumber(h[2]) == AGENT_STATE_OFFLINE then return 'ALREADY_OFFLINE' end
redis.call('HSET', KEYS[1], 'state', AGENT_STATE_OFFLINE)
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'agent_id', ARGV[1], 'change', ARGV[5])
emit_event(KEYS[4], ARGV[6], {type=EVENT_TYPE_AGENT_DEREGISTERED, ms=ARGV[3], agent_id=ARGV[1]})
return 'OK'
