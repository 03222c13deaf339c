-- Count the events the hooks group lost: entries trimmed from the events stream (by the hard cap
-- of emit_event) before the group read them. Redis counts the entries added to the stream ever
-- (entries-added) and those the group read (entries-read); entries added but neither read nor
-- still in the stream after the group's last-delivered id are lost. A loss is recorded (counter,
-- one hook.failed event) and folded into the group's read counter in this same step, so each
-- loss is counted once, by whichever runner looks first.
-- Creates the group at the end of the stream, with an exact read counter, when it is missing.
-- KEYS: events, hook_events_lost
-- ARGV: group, now_ms, events_maxlen, scan_limit
-- Returns {lost, state}; state: created, ok, lost, synced (the counter was unknown and is now
-- set; nothing counted), behind (too many unread entries to count now), unsupported (Redis < 7).
local group, limit = ARGV[1], tonumber(ARGV[4])

local function pairs_of(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

local function id_less(a, b)
  local ams, aseq = string.match(a, '^(%d+)%-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)%-(%d+)$')
  ams, bms = tonumber(ams), tonumber(bms)
  return ams < bms or (ams == bms and tonumber(aseq) < tonumber(bseq))
end

-- Redis 7.0 added the counters (and REDIS_VERSION_NUM); before, only create the group.
local counted = (redis.REDIS_VERSION_NUM or 0) >= 0x070000
local stream = {}
if redis.call('EXISTS', KEYS[1]) == 1 then
  stream = pairs_of(redis.call('XINFO', 'STREAM', KEYS[1]))
end
local added = tonumber(stream['entries-added'] or 0)
local g
if tonumber(stream['groups'] or 0) > 0 then
  for _, flat in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local info = pairs_of(flat)
    if info['name'] == group then g = info end
  end
end
if not g then
  if counted then
    redis.call('XGROUP', 'CREATE', KEYS[1], group, '$', 'MKSTREAM', 'ENTRIESREAD', added)
    return {0, 'created'}
  end
  redis.call('XGROUP', 'CREATE', KEYS[1], group, '$', 'MKSTREAM')
end
if not counted then
  return {0, 'unsupported'}
end

-- Entries still in the stream that the group has not read yet.
local delivered, length = g['last-delivered-id'], tonumber(stream['length'])
local unread
if length == 0 or not id_less(delivered, stream['last-entry'][1]) then
  unread = 0
elseif id_less(delivered, stream['first-entry'][1]) then
  unread = length
else
  local after = redis.call('XRANGE', KEYS[1], '(' .. delivered, '+', 'COUNT', limit + 1)
  if #after > limit then
    return {0, 'behind'}
  end
  unread = #after
end

local position = added - unread
local read = g['entries-read']
if read ~= false and tonumber(read) == position then
  return {0, 'ok'}
end
redis.call('XGROUP', 'SETID', KEYS[1], group, delivered, 'ENTRIESREAD', position)
local lost = read and position - tonumber(read) or 0
if lost <= 0 then
  return {0, 'synced'}
end
redis.call('INCRBY', KEYS[2], lost)
emit_event(KEYS[1], ARGV[3], {type = EVENT_TYPE_HOOK_FAILED, ms = ARGV[2],
  message = 'events lost: ' .. lost .. ' events were trimmed from the events stream before '
    .. 'the hooks runner read them; any hooks they would have triggered never ran'})
return {lost, 'lost'}
