-- Revoke a named token (idempotent); the record stays, marked revoked, for `token list`.
-- KEYS: names (hash name -> id)
-- ARGV: name, namespace prefix
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then
  return 'NOT_FOUND'
end
redis.call('HSET', ARGV[2] .. K_AUTH_TOKEN .. id, 'revoked', '1')
return 'OK'
