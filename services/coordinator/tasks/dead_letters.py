"""The dead-letter stream: list its entries (newest first) and retry one as a fresh task budget."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import cast

from hivewire.core.clock import now_ms, ts_from_ms
from hivewire.v1 import task_pb2
from hivewire_services.common.errors import FailedPrecondition, NotFound
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.validation import check_page_size, parse_stream_id
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.tasks import scripts
from hivewire_services.coordinator.tasks.store import TaskStore


@dataclass(frozen=True)
class DeadLetterPage:
    dead_letters: list[task_pb2.DeadLetter]
    next_page_token: str


class DeadLetters:
    """Reads and retries entries of the dead-letter stream. Knows nothing of gRPC."""

    def __init__(
        self, store: TaskStore, redis: Redis, keys: Keys, settings: CoordinatorSettings
    ) -> None:
        self.store = store
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self._retry = scripts.RetryDead(redis, keys, settings)

    async def list(self, *, page_size: int, page_token: str) -> DeadLetterPage:
        size = check_page_size(page_size)
        top = "+"
        if page_token:
            if parse_stream_id(page_token, "page_token") == (0, 0):
                return DeadLetterPage([], "")  # nothing is older (Redis refuses "(0-0")
            top = "(" + page_token
        rows = cast(
            list[tuple[bytes, dict[bytes, bytes]]],
            await self.redis.xrevrange(self.keys.dead_letters, top, "-", count=size),
        )
        task_ids = [fields.get(b"task_id", b"").decode() for _, fields in rows]
        tasks = await self.store.get_many(task_ids) if task_ids else []
        out = [
            _dead_letter(entry_id.decode(), fields, task)
            for (entry_id, fields), task in zip(rows, tasks, strict=True)
        ]
        token = out[-1].dead_letter_id if len(out) == size else ""
        return DeadLetterPage(out, token)

    async def retry(self, dead_letter_id: str) -> task_pb2.Task:
        """Re-queue the task of a dead letter with a fresh attempt budget; the entry goes away."""
        parse_stream_id(dead_letter_id, "dead_letter_id")
        reply = await self._retry(now_ms(), dead_letter_id)
        code = reply[0]
        if code == "NOT_FOUND":
            raise NotFound(
                f"dead letter {dead_letter_id} not found", reason="DEAD_LETTER_NOT_FOUND"
            )
        task_id = reply[1]
        if code == "TASK_GONE":
            raise NotFound(f"task {task_id} expired by retention", reason="TASK_NOT_FOUND")
        if code == "NOT_FAILED":
            state = task_pb2.TaskState.Name(int(reply[2]))  # type: ignore[arg-type]
            raise FailedPrecondition(
                f"task {task_id} is {state}, not FAILED", reason="TASK_NOT_FAILED"
            )
        if code == "IN_WORKFLOW":
            raise FailedPrecondition(
                f"task {task_id} belongs to a workflow; retry the workflow instead",
                reason="TASK_IN_WORKFLOW",
            )
        return await self.store.get(task_id)


def _dead_letter(
    entry_id: str, fields: dict[bytes, bytes], task: task_pb2.Task | None
) -> task_pb2.DeadLetter:
    def text(name: str) -> str:
        return fields.get(name.encode(), b"").decode()

    if task is None:  # the task hash expired by retention: what the entry remembers
        task = task_pb2.Task(
            task_id=text("task_id"),
            capability=text("capability"),
            state=task_pb2.TASK_STATE_FAILED,
            attempt=int(text("attempt") or 0),
            agent_id=text("agent_id"),
            error=text("error"),
        )
    letter = task_pb2.DeadLetter(dead_letter_id=entry_id, task=task)
    letter.dead_letter_time.CopyFrom(ts_from_ms(int(entry_id.split("-")[0])))
    for item in json.loads(text("errors") or "[]"):
        err = letter.errors.add(
            attempt=int(item.get("attempt", 0)),
            agent_id=str(item.get("agent_id", "")),
            error=str(item.get("error", "")),
        )
        if item.get("ms"):
            err.time.CopyFrom(ts_from_ms(int(item["ms"])))
    return letter
