-- An operator drains an agent: a live agent becomes DRAINING (coordinators assign it nothing
-- more) and is flagged so its next heartbeat response tells it to drain. Idempotent.
-- KEYS: agent, agent_changes
-- ARGV: agent_id, changes_maxlen, change_upserted
-- Returns 'OK', 'NOT_FOUND' or 'OFFLINE'.
local state = tonumber(redis.call('HGET', KEYS[1], 'state'))
if not state then return 'NOT_FOUND' end
if state == AGENT_STATE_OFFLINE then return 'OFFLINE' end
redis.call('HSET', KEYS[1], 'drain', '1')
if state == AGENT_STATE_ONLINE then
  redis.call('HSET', KEYS[1], 'state', AGENT_STATE_DRAINING)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'agent_id', ARGV[1], 'change', ARGV[3])
end
return 'OK'
