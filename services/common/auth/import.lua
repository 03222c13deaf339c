-- Import (upsert by name) one token of a static token file: only its id and hash are known.
-- The name points at the id; a record of another id under the name is deleted (the token it
-- held stops working); a record already holding this hash keeps its creation time and revoked
-- flag (a revoke sticks until the file names a new token), others start unrevoked. The record
-- is marked `source` = file, so a later import that no longer names it removes it (forget.lua).
-- KEYS: names (hash name -> id), the token's record
-- ARGV: name, id, sha256, role, tenant, capabilities, created_ms, namespace prefix
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old and old ~= ARGV[2] then
  redis.call('DEL', ARGV[8] .. K_AUTH_TOKEN .. old)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local kept = redis.call('HGET', KEYS[2], 'sha256') == ARGV[3]
if not kept then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'sha256', ARGV[3], 'created_ms', ARGV[7], 'revoked', '0')
end
redis.call('HSET', KEYS[2], 'name', ARGV[1], 'role', ARGV[4], 'tenant', ARGV[5],
  'capabilities', ARGV[6], 'source', 'file')
if kept then
  return 'KEPT'
end
return 'IMPORTED'
