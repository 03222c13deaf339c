"""The offline checker: proves from the record alone that no task was lost or applied twice.

The record is what a chaos run leaves behind: the submissions the harness saw acknowledged,
the task hashes, the whole events stream, the dead-letter stream and the agents' own count of
handler executions. `check` is a pure function of it, so it can be tested on crafted records.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from hivewire.v1 import event_pb2, task_pb2

KINDS = ("ok", "flaky", "poison")
TERMINAL_EVENTS = {
    event_pb2.EVENT_TYPE_TASK_SUCCEEDED: task_pb2.TASK_STATE_SUCCEEDED,
    event_pb2.EVENT_TYPE_TASK_FAILED: task_pb2.TASK_STATE_FAILED,
    event_pb2.EVENT_TYPE_TASK_CANCELLED: task_pb2.TASK_STATE_CANCELLED,
    event_pb2.EVENT_TYPE_TASK_TIMED_OUT: task_pb2.TASK_STATE_TIMED_OUT,
}
# Events that change a task; none may follow its terminal event. (RESULT_IGNORED and
# DEAD_LETTERED may: the first records a late result, the second follows FAILED.)
CHANGES = {
    *TERMINAL_EVENTS,
    event_pb2.EVENT_TYPE_TASK_ASSIGNED,
    event_pb2.EVENT_TYPE_TASK_STARTED,
    event_pb2.EVENT_TYPE_TASK_RETRYING,
    event_pb2.EVENT_TYPE_TASK_RECLAIMED,
    event_pb2.EVENT_TYPE_TASK_REQUEUED,
}
TERMINAL_STATES = set(TERMINAL_EVENTS.values())
Fail = Callable[[str, str], None]


def state_name(state: int) -> str:
    names = {v.number: v.name for v in task_pb2.TaskState.DESCRIPTOR.values}
    return names.get(state, str(state)).removeprefix("TASK_STATE_")


@dataclass(frozen=True)
class Accepted:
    """A submission the harness saw acknowledged: request id, task id, and what it expects."""

    request_id: str
    task_id: str
    kind: str
    n: int

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> Accepted:
        return cls(**json.loads(line))


@dataclass(frozen=True)
class TaskRow:
    """The fields of a task hash the checker reads."""

    state: int
    attempt: int
    result: bytes = b""


@dataclass
class Record:
    accepted: list[Accepted]
    tasks: dict[str, TaskRow | None]
    """Every task id in the tasks index and every accepted id, with its hash (None: missing)."""
    indexed: set[str]
    events: list[event_pb2.Event]
    events_complete: bool
    """False when the events stream lost entries (trimmed): the proof is then impossible."""
    dead_letters: list[str]
    """Task id of each dead-letter entry."""
    executions: dict[tuple[str, int], int]
    """How often agents ran each (task id, attempt)."""


@dataclass(frozen=True)
class Violation:
    rule: str
    task_id: str
    detail: str

    def __str__(self) -> str:
        return f"{self.rule} {self.task_id or '-'}: {self.detail}"


@dataclass
class Verdict:
    violations: list[Violation] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def rate(self) -> float:
        """Tasks ended per second, first submission to last end (from event times)."""
        span = self.counts.get("last_end_ms", 0) - self.counts.get("first_submit_ms", 0)
        return self.counts.get("terminal", 0) / (span / 1000) if span > 0 else 0.0


def check(record: Record) -> Verdict:
    """Every accepted task reached exactly one terminal state, with the right result, applied
    once, from its current attempt; no task lost, none created twice, none applied twice."""
    v = Verdict()
    bad = v.violations.append
    if not record.events_complete:
        bad(Violation("EVENTS_TRIMMED", "", "the events stream lost entries; cannot prove"))
    by_task: dict[str, list[event_pb2.Event]] = defaultdict(list)
    for event in record.events:
        if event.task_id:
            by_task[event.task_id].append(event)
    dead = Counter(record.dead_letters)
    runs: dict[str, dict[int, int]] = defaultdict(dict)
    for (task_id, attempt), count in record.executions.items():
        runs[task_id][attempt] = count
    accepted_ids: dict[str, Accepted] = {}
    requests: dict[str, str] = {}
    for a in record.accepted:
        if requests.setdefault(a.request_id, a.task_id) != a.task_id:
            bad(Violation("DUPLICATE_TASK", a.task_id, f"request {a.request_id} got two tasks"))
        seen = accepted_ids.setdefault(a.task_id, a)
        if seen.request_id != a.request_id:
            bad(Violation("DUPLICATE_TASK", a.task_id, "one task for two requests"))
    for task_id in sorted(record.indexed - accepted_ids.keys()):
        bad(Violation("DUPLICATE_TASK", task_id, "a task no acknowledged submission returned"))
    for task_id, a in accepted_ids.items():
        row = record.tasks.get(task_id)
        _check_task(a, row, by_task.get(task_id, []), runs.get(task_id, {}), dead, bad)
    for task_id in sorted(dead.keys() - accepted_ids.keys()):
        bad(Violation("DEAD_LETTER", task_id, "dead letter for a task nobody submitted"))
    v.counts = _counts(record, accepted_ids, by_task)
    return v


def _check_task(
    a: Accepted,
    row: TaskRow | None,
    events: list[event_pb2.Event],
    runs: dict[int, int],
    dead: Counter[str],
    bad: Callable[[Violation], None],
) -> None:
    def fail(rule: str, detail: str) -> None:
        bad(Violation(rule, a.task_id, detail))

    if row is None:
        fail("LOST", f"accepted ({a.kind} #{a.n}) but its task is gone")
        return
    state = state_name(row.state)
    if row.state not in TERMINAL_STATES:
        fail("NOT_FINISHED", f"still in state {state} at attempt {row.attempt}")
        return
    ends = [(i, e) for i, e in enumerate(events) if e.type in TERMINAL_EVENTS]
    if not ends:
        fail("NO_TERMINAL_EVENT", f"{state} but no terminal event was recorded")
    elif len(ends) > 1:
        fail("APPLIED_TWICE", f"{len(ends)} terminal events")
    else:
        at, end = ends[0]
        if TERMINAL_EVENTS[end.type] != row.state:
            fail(
                "STATE_MISMATCH",
                f"event says {state_name(TERMINAL_EVENTS[end.type])}, task says {state}",
            )
        if end.attempt != row.attempt:
            fail("STALE_RESULT", f"ended by attempt {end.attempt}, task at {row.attempt}")
        later = [e for e in events[at + 1 :] if e.type in CHANGES]
        if later:
            fail("CHANGED_AFTER_END", f"{event_pb2.EventType.Name(later[0].type)} after the end")
    expected = task_pb2.TASK_STATE_FAILED if a.kind == "poison" else task_pb2.TASK_STATE_SUCCEEDED
    if row.state != expected:
        fail("UNEXPECTED_STATE", f"{a.kind} task ended {state}")
    for attempt, count in sorted(runs.items()):
        if count > 1:
            fail("ATTEMPT_RAN_TWICE", f"attempt {attempt} ran {count} times")
        if attempt > row.attempt:
            fail("GHOST_EXECUTION", f"attempt {attempt} ran; the task only reached {row.attempt}")
    if row.state == task_pb2.TASK_STATE_SUCCEEDED:
        _check_result(a, row, runs.get(row.attempt, 0), fail)
    want_dead = 1 if row.state == task_pb2.TASK_STATE_FAILED else 0
    if dead[a.task_id] != want_dead:
        fail("DEAD_LETTER", f"{dead[a.task_id]} dead letters for a {state} task")


def _check_result(a: Accepted, row: TaskRow, runs: int, fail: Fail) -> None:
    try:
        result = json.loads(row.result)
        n, attempt = int(result["n"]), int(result["attempt"])
    except (ValueError, KeyError, TypeError):
        fail("WRONG_RESULT", f"undecodable result {row.result[:80]!r}")
        return
    if n != a.n:
        fail("WRONG_RESULT", f"result of #{n} applied to #{a.n}")
    if attempt != row.attempt:
        fail("STALE_RESULT", f"result of attempt {attempt} applied at {row.attempt}")
    if runs < 1:
        fail("NOT_EXECUTED", f"succeeded but no agent recorded running attempt {row.attempt}")
    if a.kind == "flaky" and attempt < 2:
        fail("NOT_RETRIED", "a flaky task succeeded on its failing first attempt")


def _counts(
    record: Record, accepted: dict[str, Accepted], by_task: dict[str, list[event_pb2.Event]]
) -> dict[str, int]:
    types = Counter(e.type for e in record.events if e.task_id in accepted)
    states = Counter(row.state for tid, row in record.tasks.items() if tid in accepted and row)
    submit_ms = [
        e.time.ToMilliseconds()
        for e in record.events
        if e.type == event_pb2.EVENT_TYPE_TASK_SUBMITTED and e.task_id in accepted
    ]
    end_ms = [
        e.time.ToMilliseconds()
        for e in record.events
        if e.type in TERMINAL_EVENTS and e.task_id in accepted
    ]
    runs = sum(n for (t, _), n in record.executions.items() if t in accepted)
    executed = {t for (t, _), n in record.executions.items() if t in accepted and n}
    return {
        "tasks": len(accepted),
        "terminal": sum(states[s] for s in TERMINAL_STATES),
        "succeeded": states[task_pb2.TASK_STATE_SUCCEEDED],
        "failed": states[task_pb2.TASK_STATE_FAILED],
        "dead_letters": len(record.dead_letters),
        "reclaims": types[event_pb2.EVENT_TYPE_TASK_RECLAIMED],
        "retries": types[event_pb2.EVENT_TYPE_TASK_RETRYING],
        "ignored_results": types[event_pb2.EVENT_TYPE_RESULT_IGNORED],
        "attempts": sum(
            row.attempt for tid, row in record.tasks.items() if tid in accepted and row
        ),
        "executions": runs,
        "re_executions": runs - len(executed),
        "first_submit_ms": min(submit_ms, default=0),
        "last_end_ms": max(end_ms, default=0),
    }
