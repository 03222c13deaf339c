-- Shared by every Hivewire script: a minimal protobuf encoder for hivewire.v1.Event.
-- Prepended from the Python side: enum constants (TASK_STATE_*, EVENT_TYPE_*, ...), key names
-- relative to the namespace prefix (K_*, from keys.py), field lists (task_fields.py) and row
-- layouts as index constants (`local ROW_WIDTH = n`, `local ROW_FIELD = i`, lua.lua_row): a
-- script reads field f of a row after slot b as `ARGV[b + ROW_F]`, so the Python wrapper that
-- builds the row owns its order and no table is built per row.

-- No tables are built up front: every script call runs this prelude again (a 128-entry byte
-- table cost about 36 us of Redis CPU per call, more than most scripts' own work).
local char = string.char

-- Unrolled for up to 6 bytes (every id, time and count an event carries; seconds since 1970
-- take 5): about 5x cheaper than a loop filling a table, and each event encodes two or more.
local function pb_varint(n)
  if n < 128 then return char(n) end
  local floor = math.floor
  local a = n % 128 + 128
  n = floor(n / 128)
  if n < 128 then return char(a, n) end
  local b = n % 128 + 128
  n = floor(n / 128)
  if n < 128 then return char(a, b, n) end
  local c = n % 128 + 128
  n = floor(n / 128)
  if n < 128 then return char(a, b, c, n) end
  local d = n % 128 + 128
  n = floor(n / 128)
  if n < 128 then return char(a, b, c, d, n) end
  local e = n % 128 + 128
  n = floor(n / 128)
  if n < 128 then return char(a, b, c, d, e, n) end
  return char(a, b, c, d, e) .. pb_varint(n)
end

local function pb_uint(field, n)
  n = tonumber(n)
  if n == nil or n == 0 then return '' end
  return pb_varint(field * 8) .. pb_varint(n)
end

local function pb_bytes(field, s)
  if s == nil or s == false or s == '' then return '' end
  return pb_varint(field * 8 + 2) .. pb_varint(#s) .. s
end

local function pb_timestamp(field, ms)
  ms = tonumber(ms)
  local secs = math.floor(ms / 1000)
  local nanos = (ms % 1000) * 1000000
  local body = pb_uint(1, secs) .. pb_uint(2, nanos)
  return pb_varint(field * 8 + 2) .. pb_varint(#body) .. body
end

-- hivewire.v1.Event: type=2 time=3 task_id=4 workflow_id=5 agent_id=6 capability=7
-- task_state=8 attempt=9 message=10 snapshot=11 step_id=12 progress=13 (TaskProgress bytes)
-- output_chunks=14 output_cursor=15 schedule=16 schedule_tick_time=17 (tick_ms)
-- concurrency_key=18 rate_limit=19 tenant=22 (cursor=1 is the stream id).
-- Every task emits about three events, so the common fields are written with their keys as
-- string literals ('\34' is field 4, length-delimited: 4 * 8 + 2) in one concatenation: about
-- a third cheaper than building each piece with pb_bytes and pb_uint.
local function encode_event(ev)
  local ms = tonumber(ev.ms)
  local nanos = (ms % 1000) * 1000000
  local ts = '\8' .. pb_varint(math.floor(ms / 1000))
  if nanos > 0 then ts = ts .. '\16' .. pb_varint(nanos) end
  local kind, state, attempt = tonumber(ev.type) or 0, tonumber(ev.state) or 0,
    tonumber(ev.attempt) or 0
  local task_id, agent_id, capability = ev.task_id or '', ev.agent_id or '', ev.capability or ''
  local out = (kind ~= 0 and '\16' .. pb_varint(kind) or '') .. '\26' .. char(#ts) .. ts
    .. (task_id ~= '' and '\34' .. pb_varint(#task_id) .. task_id or '')
    .. pb_bytes(5, ev.workflow_id)
    .. (agent_id ~= '' and '\50' .. pb_varint(#agent_id) .. agent_id or '')
    .. (capability ~= '' and '\58' .. pb_varint(#capability) .. capability or '')
    .. (state ~= 0 and '\64' .. pb_varint(state) or '')
    .. (attempt ~= 0 and '\72' .. pb_varint(attempt) or '')
    .. pb_bytes(10, ev.message) .. pb_bytes(12, ev.step_id) .. pb_bytes(22, ev.tenant)
  if ev.progress or ev.output_chunks then
    out = out .. pb_bytes(13, ev.progress) .. pb_uint(14, ev.output_chunks)
      .. pb_bytes(15, ev.output_cursor)
  end
  if ev.schedule then
    out = out .. pb_bytes(16, ev.schedule)
    if ev.tick_ms then out = out .. pb_timestamp(17, ev.tick_ms) end
  end
  if ev.ckey or ev.rate_limit then
    out = out .. pb_bytes(18, ev.ckey) .. pb_bytes(19, ev.rate_limit)
  end
  return out
end

-- Append an event to the events stream. The coordinator trims it to about maxlen entries but
-- never past an entry a consumer group has not acknowledged (services/coordinator/tasks/trimmer.py);
-- 10 x maxlen is only the hard cap that bounds memory if a group stalls.
local function emit_event(events_key, maxlen, ev)
  redis.call('XADD', events_key, 'MAXLEN', '~', tonumber(maxlen) * 10, '*', 'event',
    encode_event(ev))
end

-- Tell the workflow engine that a workflow task reached a terminal state.
local function notify_workflow(prefix, workflow_id, step_id, task_id, state)
  if workflow_id and workflow_id ~= '' then
    redis.call('XADD', prefix .. K_WORKFLOW_UPDATES, '*', 'task_id', task_id,
      'workflow_id', workflow_id, 'step_id', step_id or '', 'state', state)
  end
end
