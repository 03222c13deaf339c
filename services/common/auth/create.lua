-- Create (or, with replace = 1, re-issue) a named API token.
-- KEYS: names (hash name -> id), token hash of the new id
-- ARGV: name, id, sha256, role, tenant, capabilities, created_ms, replace, namespace prefix
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old and ARGV[8] ~= '1' then
  return 'ALREADY_EXISTS'
end
if old then
  redis.call('DEL', ARGV[9] .. K_AUTH_TOKEN .. old)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], 'name', ARGV[1], 'sha256', ARGV[3], 'role', ARGV[4],
  'tenant', ARGV[5], 'capabilities', ARGV[6], 'created_ms', ARGV[7], 'revoked', '0')
return 'OK'
