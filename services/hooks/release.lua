-- Give back deliveries a stopping runner had claimed: due now, and the attempt not counted.
-- KEYS: hook_due
-- ARGV: delivery_prefix, now_ms, then pairs: delivery_id, attempt
for i = 3, #ARGV, 2 do
  local key = ARGV[1] .. ARGV[i]
  if tonumber(redis.call('HGET', key, 'attempt')) == tonumber(ARGV[i + 1]) then
    redis.call('HINCRBY', key, 'attempt', -1)
    redis.call('ZADD', KEYS[1], tonumber(ARGV[2]), ARGV[i])
  end
end
return 0
