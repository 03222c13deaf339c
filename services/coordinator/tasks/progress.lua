-- Apply a batch of PROGRESS reports read from the results stream, in order, then XACK and XDEL
-- each entry. A report counts only for the task's current attempt with its token while the task
-- is ASSIGNED or RUNNING; anything else (a superseded attempt still running somewhere, a wrong
-- token, a report whose agent_id is not the attempt's assignee, a task already finished) is
-- recorded as RESULT_IGNORED. An applied report:
--  * marks an ASSIGNED attempt RUNNING (like STARTED);
--  * moves the attempt's progress deadline on (a task with a progress_timeout);
--  * stores its progress on the task (`progress`: TaskProgress bytes) with a task.progress event;
--  * appends its output chunks, in order, to the task's output stream with one task.output
--    event. The stream holds at most max_bytes of chunks (serialized sizes, counted in
--    `output_bytes`); the first chunk that does not fit is replaced by one truncation marker
--    and every later chunk is dropped, its bytes counted in `output_dropped`.
-- The output stream lives exactly as long as the task hash: it is only written here for a live
-- task, and expire.lua deletes it with the hash.
-- KEYS: the tasklib context (1..8), then results
-- ARGV: the tasklib context (1..7), then group, max_bytes, n, then per report a PROGRESS_ROW
--   (scripts.py ProgressRow: entry_id, task_id, attempt, token, agent_id, start_ms, progress,
--   message, chunks) followed by its `chunks` OutputChunk bytes
-- Returns {applied, ignored, chunks stored, chunks dropped, foreign} (ignored counts the foreign
-- reports too).
local C = context()
local results, group = KEYS[9], ARGV[8]
local max_bytes, n = tonumber(ARGV[9]), tonumber(ARGV[10])
local applied, ignored, stored_total, dropped_total, foreign = 0, 0, 0, 0, 0
local entry_ids = {}

-- Append the chunks ARGV[first + 1 .. first + count] to the task's output; returns how many
-- entries were written (the marker included), how many chunks were dropped, and the id of the
-- last entry written.
local function append_output(t, first, count)
  local key = C.prefix .. K_OUTPUT .. t.id
  local cut = redis.call('HGET', t.key, 'output_dropped')
  local used, dropped = tonumber(t.output_bytes) or 0, tonumber(cut) or 0
  local stored, lost, last = 0, 0, nil
  for j = first + 1, first + count do
    local chunk = ARGV[j]
    if not cut and used + #chunk <= max_bytes then
      last = redis.call('XADD', key, '*', 'chunk', chunk)
      used = used + #chunk
      stored = stored + 1
    else
      if not cut then
        cut = true
        local text = '[output truncated: the task reached its output limit of ' .. max_bytes
          .. ' bytes; later output is dropped]'
        local marker = pb_uint(1, OUTPUT_STREAM_LOG) .. pb_bytes(2, text) .. pb_timestamp(3, C.now)
        last = redis.call('XADD', key, '*', 'chunk', marker)
        stored = stored + 1
      end
      dropped = dropped + #chunk
      lost = lost + 1
    end
  end
  if cut then
    redis.call('HSET', t.key, 'output_bytes', used, 'output_dropped', dropped)
  else
    redis.call('HSET', t.key, 'output_bytes', used)
  end
  t.output_bytes = used
  return stored, lost, last
end

local b = 10
for _ = 1, n do
  local entry_id, task_id = ARGV[b + PROGRESS_ROW_ENTRY_ID], ARGV[b + PROGRESS_ROW_TASK_ID]
  local attempt, token = tonumber(ARGV[b + PROGRESS_ROW_ATTEMPT]), ARGV[b + PROGRESS_ROW_TOKEN]
  local agent_id, start_ms = ARGV[b + PROGRESS_ROW_AGENT_ID], ARGV[b + PROGRESS_ROW_START_MS]
  local progress, message = ARGV[b + PROGRESS_ROW_PROGRESS], ARGV[b + PROGRESS_ROW_MESSAGE]
  local count = tonumber(ARGV[b + PROGRESS_ROW_CHUNKS])
  local first = b + PROGRESS_ROW_WIDTH
  b = first + count
  entry_ids[#entry_ids + 1] = entry_id
  local t = load_task(C, task_id)
  local why = nil
  if not t.state then
    why = 'unknown task'
  elseif tonumber(t.attempt) ~= attempt then
    why = 'progress report for superseded attempt ' .. attempt .. ' (current ' .. t.attempt .. ')'
  elseif t.token ~= token and (t.token or t.state ~= TASK_STATE_SUCCEEDED) then
    -- (a SUCCEEDED task keeps no token: tasklib.lua drop_defaults)
    why = 'wrong attempt token'
  elseif t.agent_id ~= agent_id then
    why = 'progress report from an agent other than the assignee ' .. (t.agent_id or '')
    foreign = foreign + 1
  elseif not is_live(t) then
    why = 'late progress report (task already ' .. TASK_STATE_NAMES[t.state] .. ')'
  end
  if why then
    ignored = ignored + 1
    local ev = event_of(t, EVENT_TYPE_RESULT_IGNORED, t.state, attempt, agent_id, why)
    emit(C, ev)
  else
    applied = applied + 1
    mark_started(C, t, event_of(t, nil, t.state, attempt, agent_id, nil), start_ms)
    local progress_ms = tonumber(t.progress_ms) or 0
    if progress_ms > 0 then
      redis.call('ZADD', C.prefix .. K_PROGRESS_DEADLINES, C.now + progress_ms, task_id)
    end
    if progress ~= '' then
      redis.call('HSET', t.key, 'progress', progress)
      local ev = event_of(t, EVENT_TYPE_TASK_PROGRESS, t.state, attempt, agent_id, message)
      ev.progress = progress
      emit(C, ev)
    end
    if count > 0 then
      local stored, lost, last = append_output(t, first, count)
      stored_total, dropped_total = stored_total + stored, dropped_total + lost
      if stored > 0 then
        local ev = event_of(t, EVENT_TYPE_TASK_OUTPUT, t.state, attempt, agent_id, nil)
        ev.output_chunks, ev.output_cursor = stored, last
        emit(C, ev)
      end
    end
  end
end
ack_and_delete(results, group, entry_ids)
return {applied, ignored, stored_total, dropped_total, foreign}
