"""Eager dispatch: a submitted task an agent has room for is assigned by the submit script."""

from __future__ import annotations

from collections.abc import Sequence

from hivewire.v1 import task_pb2
from hivewire_services.common.submission import ValidTask
from hivewire_services.common.task_fields import PeekedTask
from hivewire_services.coordinator.tasks.scheduler import Assignment, Scheduler, plan
from hivewire_services.coordinator.tasks.scripts import AssignRow, Submit, SubmitRow

APPLIED = 1
"""The submit script's code for an offer it assigned (otherwise an assign.lua code, or -1 when
it did not try: the task was not created, or one ahead of it in its queue stayed)."""


def eligible(spec: ValidTask, row: SubmitRow) -> bool:
    """Whether a submitted task may be offered at all: it may start now, is no workflow step,
    and its concurrency strategy does not cancel older holders first (supersede.lua runs after
    the submit script and only for tasks still PENDING)."""
    return (
        not row.task.due_ms
        and not spec.workflow_id
        and not spec.step_id
        and spec.concurrency_strategy != task_pb2.CONCURRENCY_STRATEGY_CANCEL_IN_PROGRESS
    )


def _peeked(row: SubmitRow) -> PeekedTask:
    """A new task as peek.lua would read it from its hash (attempt 0, no workflow)."""
    t = row.task
    return PeekedTask(
        attempt=None,
        labels=None,
        payload=row.payload,
        workflow_id=None,
        timeout_ms=str(t.timeout_ms).encode(),
        trace_id=t.trace_id.encode(),
        progress_ms=str(t.progress_ms).encode(),
        hb_ms=str(t.hb_ms).encode(),
    )


class EagerDispatch:
    """Pairs the tasks of a submission with agents as a scheduling pass would (the scheduler's
    agent cache, its load estimate, `plan`) and prepares their first attempts; submit.lua
    applies an offer only when nothing waits ahead of the task and every assign.lua check holds,
    else the task stays PENDING for the scheduler, as without eager dispatch."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def offers(
        self, specs: Sequence[ValidTask], rows: Sequence[SubmitRow], now: int
    ) -> list[Assignment]:
        by_capability: dict[str, list[int]] = {}
        for i, (spec, row) in enumerate(zip(specs, rows, strict=True)):
            if eligible(spec, row):
                by_capability.setdefault(spec.capability, []).append(i)
        load = dict(self.scheduler.load)  # plan takes slots from it as it goes
        out: list[Assignment] = []
        for capability, indexes in by_capability.items():
            agents = self.scheduler.cache.for_capability(capability)
            if not agents:
                continue
            of_id = {rows[i].task.task_id: i for i in indexes}
            tasks = [(rows[i].task.task_id, specs[i].required_labels) for i in indexes]
            for task_id, agent_id in plan(tasks, agents, load):
                row = rows[of_id[task_id]]
                out.append(self.scheduler.prepare(task_id, agent_id, capability, _peeked(row), now))
        return out

    def settle(
        self, offers: Sequence[Assignment], codes: Sequence[int], loads: Sequence[int]
    ) -> list[Assignment]:
        """The offers submit.lua applied, after their bookkeeping (dispatch spans, deadlines,
        counters); `loads`: each offer's agent's load as the script left it, -1 unread."""
        applied = [a for a, code in zip(offers, codes, strict=True) if code == APPLIED]
        for a in applied:
            if a.span is not None:
                a.span.end()
        # The span of an offer not applied is dropped unended (never exported): nothing was
        # dispatched, and the scheduler's pass makes the dispatch span of the real delivery.
        self.scheduler.dispatched(applied)
        for a, load in zip(offers, loads, strict=True):
            if load >= 0:
                self.scheduler.load[a.row.agent_id] = load
        return applied


async def submit_with_offers(
    eager: EagerDispatch | None,
    submit: Submit,
    now: int,
    specs: Sequence[ValidTask],
    rows: Sequence[SubmitRow],
) -> tuple[list[str], dict[str, AssignRow]]:
    """submit.lua with the offers of `eager` (none without it): per row the task id it yields,
    and the offers it applied by task id."""
    offers = eager.offers(specs, rows, now) if eager is not None else []
    done = await submit(now, rows, [a.row for a in offers])
    applied = eager.settle(offers, done.codes, done.loads) if eager is not None else []
    return done.ids, {a.row.task_id: a.row for a in applied}
