-- Store a new workflow (every step WAITING) and append WORKFLOW_SUBMITTED. A repeated
-- request_id returns the workflow it created before. Root steps are launched by advance.lua.
-- KEYS: workflows_index, workflow_seq, events, workflows_running, workflow
-- ARGV: prefix, now_ms, events_maxlen, workflow_id, request_key, request_ttl_s, name,
--   failure_policy, command, request_id, steps_json, n, then n step ids, then the traceparent
--   every step task descends from, then the tenant ('' for the default tenant)
local prefix, now, maxlen, wid = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local request_key, ttl = ARGV[5], ARGV[6]
if request_key ~= '' then
  local existing = redis.call('GET', request_key)
  if existing then return existing end
  redis.call('SET', request_key, wid, 'EX', ttl)
end
local wk = KEYS[5]
local seq = redis.call('INCR', KEYS[2])
redis.call('HSET', wk, 'name', ARGV[7], 'state', WORKFLOW_STATE_RUNNING, 'policy', ARGV[8],
  'command', ARGV[9], 'request_id', ARGV[10], 'steps', ARGV[11], 'create_ms', now, 'seq', seq)
local n = tonumber(ARGV[12])
for i = 1, n do
  redis.call('HSET', wk, 'st:' .. ARGV[12 + i], STEP_STATE_WAITING)
end
redis.call('HSET', wk, 'traceparent', ARGV[13 + n] or '')
local tenant = ARGV[14 + n] or ''
if tenant ~= '' then
  redis.call('HSET', wk, 'tenant', tenant)
  redis.call('ZADD', prefix .. K_TENANT_WORKFLOWS .. tenant, seq, wid)
end
redis.call('ZADD', KEYS[1], seq, wid)
redis.call('ZADD', KEYS[4], seq, wid)
emit_event(KEYS[3], maxlen, {type = EVENT_TYPE_WORKFLOW_SUBMITTED, ms = now, workflow_id = wid,
  message = ARGV[7], tenant = tenant})
return wid
