-- Create a batch of tasks atomically (taskcreate.lua create_task).
-- A repeated request_id returns the task it created before instead of a new one.
-- KEYS: the taskcreate context (1..4)
-- ARGV: the taskcreate context (1..3), request_ttl_s, n, rows, then the n payloads;
--   rows is a JSON array of n rows: the NEW_TASK values (NEW_TASK_* indexes), then the request
--   key ('' for none)
--   (built by scripts.submit)
local ttl, n = ARGV[4], tonumber(ARGV[5])
local rows = cjson.decode(ARGV[6])
local out = {}
for i = 1, n do
  local r = rows[i]
  local task_id = r[NEW_TASK_TASK_ID]
  local request_key = r[NEW_TASK_WIDTH + 1]
  local existing = false
  if request_key ~= '' then
    existing = redis.call('GET', request_key)
  end
  if existing then
    out[#out + 1] = existing
  else
    if request_key ~= '' then
      redis.call('SET', request_key, task_id, 'EX', ttl)
    end
    create_task(r, ARGV[6 + i])
    out[#out + 1] = task_id
  end
end
return out
