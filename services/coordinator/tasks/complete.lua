-- Apply a batch of TaskResults read from the results stream, then XACK and XDEL each entry.
-- A result is applied only for the task's current attempt with that attempt's token; anything
-- else (stale attempt, wrong token, duplicate, unknown task) is recorded as RESULT_IGNORED. So is
-- a result with the right token whose agent_id is not the attempt's assignee (a forged or
-- misrouted result), counted apart as foreign.
-- A failure is retried after a capped exponential backoff with jitter (via the due set) until
-- max_attempts; then the task is FAILED and written to the dead-letter stream.
-- KEYS: the tasklib context (1..8), then results
-- ARGV: the tasklib context (1..7), then group, n, then per result a COMPLETE_ROW, read by its
--   COMPLETE_ROW_* indexes (scripts.py
--   CompleteRow: entry_id, task_id, attempt, token, agent_id, outcome, result, error, start_ms,
--   end_ms, jitter (0..1))
-- Returns {applied, ignored, retried, failed, foreign, pending} (ignored counts the foreign
-- ones too; pending: PENDING tasks after the batch, so the caller wakes the scheduler for the
-- freed slots only when something waits for one).
local C = context()
local results, group, n = KEYS[9], ARGV[8], tonumber(ARGV[9])
local applied, ignored, retried, failed, foreign = 0, 0, 0, 0, 0
local entry_ids = {}

for i = 0, n - 1 do
  local b = 9 + i * COMPLETE_ROW_WIDTH
  local entry_id, task_id = ARGV[b + COMPLETE_ROW_ENTRY_ID], ARGV[b + COMPLETE_ROW_TASK_ID]
  local attempt, token = tonumber(ARGV[b + COMPLETE_ROW_ATTEMPT]), ARGV[b + COMPLETE_ROW_TOKEN]
  local agent_id, outcome = ARGV[b + COMPLETE_ROW_AGENT_ID], tonumber(ARGV[b + COMPLETE_ROW_OUTCOME])
  local result, err = ARGV[b + COMPLETE_ROW_RESULT], ARGV[b + COMPLETE_ROW_ERROR]
  local start_ms, jitter = ARGV[b + COMPLETE_ROW_START_MS], tonumber(ARGV[b + COMPLETE_ROW_JITTER])
  entry_ids[#entry_ids + 1] = entry_id
  local t = load_task(C, task_id)
  local ev = event_of(t, nil, t.state, attempt, agent_id, nil)
  local why = nil
  if not t.state then
    why = 'unknown task'
  elseif tonumber(t.attempt) ~= attempt then
    why = 'result for superseded attempt ' .. attempt .. ' (current ' .. t.attempt .. ')'
  elseif t.token ~= token and (t.token or t.state ~= TASK_STATE_SUCCEEDED) then
    -- (a SUCCEEDED task keeps no token: tasklib.lua drop_defaults)
    why = 'wrong attempt token'
  elseif t.agent_id ~= agent_id then
    why = 'result from an agent other than the assignee ' .. (t.agent_id or '')
    foreign = foreign + 1
  elseif outcome == TASK_OUTCOME_STARTED then
    mark_started(C, t, ev, start_ms)
  elseif not is_live(t) then
    -- The attempt already ended (or was cancelled): free its slot once, apply nothing.
    release_slot(C, t)
    end_attempt(C, t)
    if not (t.state == TASK_STATE_CANCELLED and outcome == TASK_OUTCOME_CANCELLED) then
      why = 'duplicate result (task already ' .. TASK_STATE_NAMES[t.state] .. ')'
    end
  else
    release_slot(C, t, true)  -- each branch below writes held = '' with its HSET
    end_attempt(C, t)
    applied = applied + 1
    if outcome == TASK_OUTCOME_SUCCEEDED then
      finish(C, t, TASK_STATE_SUCCEEDED,
        {'result', result, 'error', '', 'start_ms', start_ms, 'held', ''})
      ev.type, ev.state = EVENT_TYPE_TASK_SUCCEEDED, TASK_STATE_SUCCEEDED
      emit(C, ev)
    elseif outcome == TASK_OUTCOME_CANCELLED then
      finish(C, t, TASK_STATE_CANCELLED, {'error', err, 'held', ''})
      ev.type, ev.state, ev.message = EVENT_TYPE_TASK_CANCELLED, TASK_STATE_CANCELLED, err
      emit(C, ev)
    else
      local retryable = outcome == TASK_OUTCOME_FAILED
      redis.call('HSET', t.key, 'start_ms', start_ms, 'held', '')
      local r = fail_attempt(C, t, attempt, agent_id, err, retryable, jitter, false)
      emit_failure(C, t, r, attempt, agent_id, err)
      if r == 'retry' then retried = retried + 1 else failed = failed + 1 end
    end
  end
  if why then
    ignored = ignored + 1
    ev.type, ev.message = EVENT_TYPE_RESULT_IGNORED, why
    emit(C, ev)
  end
end
ack_and_delete(results, group, entry_ids)
local pending = redis.call('ZCARD', C.prefix .. K_TASKS_BY_STATE .. TASK_STATE_PENDING)
return {applied, ignored, retried, failed, foreign, pending}
