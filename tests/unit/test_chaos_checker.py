"""The chaos checker on crafted records: it passes a clean one and fails every kind of breach."""

from __future__ import annotations

import json
import uuid

from bench.chaos.checker import Accepted, Record, TaskRow, check
from hivewire.v1 import event_pb2, task_pb2

SUCCEEDED = task_pb2.TASK_STATE_SUCCEEDED
FAILED = task_pb2.TASK_STATE_FAILED
E = event_pb2


def event(kind: int, task_id: str, attempt: int = 1, ms: int = 1000) -> event_pb2.Event:
    ev = event_pb2.Event(type=kind, task_id=task_id, attempt=attempt)  # type: ignore[arg-type]
    ev.time.FromMilliseconds(ms)
    return ev


def clean_record() -> Record:
    """Three ok tasks (one reclaimed once and finished by attempt 2) and one poison task."""
    accepted = [
        Accepted(f"r{n}", uuid.uuid4().hex, "poison" if n == 3 else "ok", n) for n in range(4)
    ]
    rec = Record(accepted, {}, set(), [], True, [], {})
    for a in accepted:
        rec.indexed.add(a.task_id)
        rec.events.append(event(E.EVENT_TYPE_TASK_SUBMITTED, a.task_id, 0, 1000))
        last = 2 if a.n == 1 else 1
        for attempt in range(1, last + 1):
            rec.events.append(event(E.EVENT_TYPE_TASK_ASSIGNED, a.task_id, attempt))
            rec.executions[(a.task_id, attempt)] = 1
        if a.n == 1:
            rec.events.append(event(E.EVENT_TYPE_TASK_RECLAIMED, a.task_id, 1))
            rec.events.append(event(E.EVENT_TYPE_TASK_RETRYING, a.task_id, 1))
        if a.kind == "poison":
            rec.tasks[a.task_id] = TaskRow(FAILED, last)
            rec.events.append(event(E.EVENT_TYPE_TASK_FAILED, a.task_id, last, 3000))
            rec.events.append(event(E.EVENT_TYPE_TASK_DEAD_LETTERED, a.task_id, last, 3000))
            rec.dead_letters.append(a.task_id)
        else:
            result = json.dumps({"n": a.n, "attempt": last}).encode()
            rec.tasks[a.task_id] = TaskRow(SUCCEEDED, last, result)
            rec.events.append(event(E.EVENT_TYPE_TASK_SUCCEEDED, a.task_id, last, 3000))
    return rec


def rules(rec: Record) -> set[str]:
    return {v.rule for v in check(rec).violations}


def test_a_clean_record_passes_with_its_counts() -> None:
    verdict = check(clean_record())
    assert verdict.ok, verdict.violations
    c = verdict.counts
    assert (c["tasks"], c["succeeded"], c["failed"], c["dead_letters"]) == (4, 3, 1, 1)
    assert (c["reclaims"], c["retries"], c["executions"], c["re_executions"]) == (1, 1, 5, 1)
    assert verdict.rate() == 4 / 2.0


def test_a_lost_task_fails() -> None:
    rec = clean_record()
    rec.tasks[rec.accepted[0].task_id] = None
    rec.indexed.discard(rec.accepted[0].task_id)
    assert rules(rec) == {"LOST"}


def test_a_task_stuck_before_its_end_fails() -> None:
    rec = clean_record()
    rec.tasks[rec.accepted[0].task_id] = TaskRow(task_pb2.TASK_STATE_RUNNING, 1)
    assert rules(rec) == {"NOT_FINISHED"}


def test_a_result_applied_twice_fails() -> None:
    rec = clean_record()
    rec.events.append(event(E.EVENT_TYPE_TASK_SUCCEEDED, rec.accepted[0].task_id, 1, 4000))
    assert rules(rec) == {"APPLIED_TWICE"}


def test_a_change_after_the_end_fails() -> None:
    rec = clean_record()
    rec.events.append(event(E.EVENT_TYPE_TASK_RETRYING, rec.accepted[2].task_id, 1, 4000))
    assert rules(rec) == {"CHANGED_AFTER_END"}


def test_a_late_ignored_result_is_fine() -> None:
    rec = clean_record()
    rec.events.append(event(E.EVENT_TYPE_RESULT_IGNORED, rec.accepted[1].task_id, 1, 4000))
    verdict = check(rec)
    assert verdict.ok and verdict.counts["ignored_results"] == 1


def test_a_result_from_a_superseded_attempt_fails() -> None:
    rec = clean_record()
    tid = rec.accepted[1].task_id
    rec.tasks[tid] = TaskRow(SUCCEEDED, 2, json.dumps({"n": 1, "attempt": 1}).encode())
    assert rules(rec) == {"STALE_RESULT"}


def test_another_tasks_result_fails() -> None:
    rec = clean_record()
    tid = rec.accepted[0].task_id
    rec.tasks[tid] = TaskRow(SUCCEEDED, 1, json.dumps({"n": 2, "attempt": 1}).encode())
    assert rules(rec) == {"WRONG_RESULT"}


def test_an_attempt_run_twice_fails() -> None:
    rec = clean_record()
    rec.executions[(rec.accepted[0].task_id, 1)] = 2
    assert rules(rec) == {"ATTEMPT_RAN_TWICE"}


def test_a_success_nobody_ran_fails() -> None:
    rec = clean_record()
    del rec.executions[(rec.accepted[0].task_id, 1)]
    assert rules(rec) == {"NOT_EXECUTED"}


def test_a_task_created_twice_fails() -> None:
    rec = clean_record()
    rec.indexed.add(uuid.uuid4().hex)  # a second task for a retried submission
    assert rules(rec) == {"DUPLICATE_TASK"}


def test_a_missing_or_double_dead_letter_fails() -> None:
    rec = clean_record()
    rec.dead_letters.append(rec.accepted[3].task_id)
    assert rules(rec) == {"DEAD_LETTER"}
    rec = clean_record()
    rec.dead_letters.clear()
    assert rules(rec) == {"DEAD_LETTER"}


def test_a_poison_task_that_succeeded_fails() -> None:
    rec = clean_record()
    a = rec.accepted[0]
    rec.accepted[0] = Accepted(a.request_id, a.task_id, "poison", a.n)
    assert "UNEXPECTED_STATE" in rules(rec)


def test_a_trimmed_events_stream_cannot_prove_anything() -> None:
    rec = clean_record()
    rec.events_complete = False
    assert rules(rec) == {"EVENTS_TRIMMED"}


def test_a_missing_terminal_event_fails() -> None:
    rec = clean_record()
    tid = rec.accepted[0].task_id
    rec.events = [
        e for e in rec.events if not (e.task_id == tid and e.type == E.EVENT_TYPE_TASK_SUCCEEDED)
    ]
    assert rules(rec) == {"NO_TERMINAL_EVENT"}
