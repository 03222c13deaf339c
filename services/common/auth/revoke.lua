-- Revoke a named token (idempotent); the record stays, marked revoked, for `token list`.
-- KEYS: names (hash name -> id), token prefix
-- ARGV: name
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then
  return 'NOT_FOUND'
end
redis.call('HSET', KEYS[2] .. id, 'revoked', '1')
return 'OK'
