-- Renew an agent's lease; draining switches ONLINE to DRAINING once.
-- KEYS: agent, leases, agent_changes
-- ARGV: agent_id, token_sha256, now_ms, lease_expire_ms, draining ('1' or '0'),
--       changes_maxlen, change_upserted
-- Returns 'OK', 'DRAIN' (an operator drained the agent: drain.lua), 'NOT_FOUND', 'BAD_TOKEN'
-- or 'OFFLINE'.
local h = redis.call('HMGET', KEYS[1], 'token_sha256', 'state', 'drain')
if not h[1] then return 'NOT_FOUND' end
if h[1] ~= ARGV[2] then return 'BAD_TOKEN' end
local state = tonumber(h[2])
if state == AGENT_STATE_OFFLINE then return 'OFFLINE' end
redis.call('HSET', KEYS[1], 'heartbeat_ms', ARGV[3], 'lease_expire_ms', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
if ARGV[5] == '1' and state == AGENT_STATE_ONLINE then
  redis.call('HSET', KEYS[1], 'state', AGENT_STATE_DRAINING)
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'agent_id', ARGV[1], 'change', ARGV[7])
end
if h[3] == '1' then return 'DRAIN' end
return 'OK'
