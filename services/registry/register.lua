-- Register a new agent: hash, index, lease, inbox + consumer group, change entry and event.
-- KEYS: agent, agents_index, leases, inbox, agent_changes, events, agent_seq
-- ARGV: agent_id, name, capabilities, labels, max_concurrency, now_ms, lease_expire_ms,
--       token_sha256, inbox_group, changes_maxlen, change_upserted, events_maxlen, owner
--       (the principal whose credential registered it)
local created = redis.pcall('XGROUP', 'CREATE', KEYS[4], ARGV[9], '$', 'MKSTREAM')
if type(created) == 'table' and created.err and not string.find(created.err, 'BUSYGROUP') then
  return redis.error_reply(created.err)
end
local seq = redis.call('INCR', KEYS[7])
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'capabilities', ARGV[3], 'labels', ARGV[4],
  'max_concurrency', ARGV[5], 'state', AGENT_STATE_ONLINE, 'register_ms', ARGV[6],
  'heartbeat_ms', ARGV[6], 'lease_expire_ms', ARGV[7], 'token_sha256', ARGV[8], 'seq', seq,
  'owner', ARGV[13])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[10], '*', 'agent_id', ARGV[1], 'change', ARGV[11])
emit_event(KEYS[6], ARGV[12], {type=EVENT_TYPE_AGENT_REGISTERED, ms=ARGV[6], agent_id=ARGV[1]})
return seq
