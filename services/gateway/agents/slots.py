"""The assignments of one agent stream: sent and not finished, never more than its slots."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from hivewire.v1 import stream_pb2


@dataclass(eq=False)
class Assignment:
    """An attempt sent on the stream (or resumed), until its result is stored."""

    envelope: stream_pb2.TaskEnvelope
    entry_id: bytes
    storing: bool = False
    """Its final result is being stored (a repeat of it is not stored again)."""


class Slots:
    """Assignments by task id; `wait_free` blocks while the agent's slots are all taken."""

    def __init__(self, max_concurrency: int) -> None:
        self.max_concurrency = max_concurrency
        self._by_task: dict[str, Assignment] = {}
        self._freed = asyncio.Event()

    def __len__(self) -> int:
        return len(self._by_task)

    @property
    def free(self) -> int:
        return self.max_concurrency - len(self._by_task)

    async def wait_free(self) -> int:
        """How many more may be sent, once that is at least one."""
        while self.free <= 0:
            self._freed.clear()
            await self._freed.wait()
        return self.free

    def add(self, envelope: stream_pb2.TaskEnvelope, entry_id: bytes) -> Assignment:
        assignment = Assignment(envelope, entry_id)
        self._by_task[envelope.task_id] = assignment
        return assignment

    def match(self, result: stream_pb2.TaskResult) -> Assignment | None:
        """The assignment a report is for: same task, attempt and attempt token."""
        a = self._by_task.get(result.task_id)
        if a is None or a.envelope.attempt != result.attempt:
            return None
        return a if a.envelope.attempt_token == result.attempt_token else None

    def finish(self, assignment: Assignment) -> None:
        if self._by_task.get(assignment.envelope.task_id) is assignment:
            del self._by_task[assignment.envelope.task_id]
            self._freed.set()

    def known(self, task_ids: Iterable[str]) -> list[str]:
        """The ids among `task_ids` assigned on this stream, without repeats."""
        return [t for t in dict.fromkeys(task_ids) if t in self._by_task]

    def task_ids(self) -> list[str]:
        return list(self._by_task)
