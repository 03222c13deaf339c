-- Record the outcome of a workflow's tasks that reached a terminal state, once each: the
-- step they run succeeds (a map step once every element has), fails or is cancelled.
-- Tasks that are not terminal yet, unknown to the workflow or already recorded are skipped,
-- so replaying this after a crash or for a duplicate notification is harmless.
-- KEYS: workflow
-- ARGV: prefix, now_ms, workflow_id, n, then n task ids
-- Returns how many tasks were recorded.
local prefix, now, wid, n = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local wk = KEYS[1]
local recorded = 0

local function json_or_string(raw)
  if raw == nil or raw == false or raw == '' then return 'null' end
  if pcall(cjson.decode, raw) then return raw end
  return cjson.encode(raw)
end

local function end_step(sid, state, fields)
  redis.call('HSET', wk, 'st:' .. sid, state, 't1:' .. sid, now, unpack(fields))
end

for i = 1, n do
  local tid = ARGV[4 + i]
  local x = redis.call('HGET', wk, 'x:' .. tid)
  if x and redis.call('HEXISTS', wk, 'd:' .. tid) == 0 then
    local t = redis.call('HMGET', prefix .. K_TASK .. tid, 'state', 'result', 'error',
      'agent_id', 'attempt')
    local state = tonumber(t[1])
    if state == TASK_STATE_SUCCEEDED or state == TASK_STATE_FAILED
        or state == TASK_STATE_CANCELLED or state == TASK_STATE_TIMED_OUT then
      recorded = recorded + 1
      redis.call('HSET', wk, 'd:' .. tid, state)
      local sid, idx = string.match(x, '^(.*),(%d+)$')
      if tonumber(redis.call('HGET', wk, 'st:' .. sid)) == STEP_STATE_RUNNING then
        local attempt = tonumber(t[5]) or 0
        if attempt >= (tonumber(redis.call('HGET', wk, 'at:' .. sid)) or 0) then
          redis.call('HSET', wk, 'at:' .. sid, attempt)
        end
        redis.call('HSET', wk, 'ag:' .. sid, t[4] or '')
        local total = tonumber(redis.call('HGET', wk, 'mt:' .. sid))
        if state == TASK_STATE_SUCCEEDED then
          if total == nil then
            end_step(sid, STEP_STATE_SUCCEEDED, {'o:' .. sid, t[2] or ''})
          else
            redis.call('HSET', wk, 'mo:' .. sid .. ':' .. idx, t[2] or '')
            if redis.call('HINCRBY', wk, 'md:' .. sid, 1) >= total then
              local parts, names = {}, {}
              for j = 0, total - 1 do
                names[#names + 1] = 'mo:' .. sid .. ':' .. j
                parts[#parts + 1] = json_or_string(redis.call('HGET', wk, names[#names]))
              end
              end_step(sid, STEP_STATE_SUCCEEDED, {'o:' .. sid, '[' .. table.concat(parts, ',') .. ']'})
              redis.call('HDEL', wk, unpack(names))
            end
          end
        elseif state == TASK_STATE_CANCELLED then
          end_step(sid, STEP_STATE_CANCELLED, {'er:' .. sid, 'task ' .. tid .. ' was cancelled'})
        else
          local prefix_err = total and ('element ' .. idx .. ': ') or ''
          if state == TASK_STATE_TIMED_OUT then prefix_err = prefix_err .. 'timed out: ' end
          end_step(sid, STEP_STATE_FAILED, {'er:' .. sid, prefix_err .. (t[3] or '')})
        end
      end
    end
  end
end
return recorded
