-- Remove a token that an earlier import of the static token file made and the file no longer
-- names: its record and its name go, so the token stops working. A token made through the API
-- (`hivewire token create`, no `source`) under that name is left alone.
-- KEYS: names (hash name -> id)
-- ARGV: name, namespace prefix
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then
  return 'NOT_FOUND'
end
local record = ARGV[2] .. K_AUTH_TOKEN .. id
if redis.call('HGET', record, 'source') ~= 'file' then
  return 'KEPT'
end
redis.call('DEL', record)
redis.call('HDEL', KEYS[1], ARGV[1])
return 'REMOVED'
