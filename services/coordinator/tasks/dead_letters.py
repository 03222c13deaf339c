"""The dead-letter stream: list its entries (newest first) and retry one as a fresh task budget."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import cast

from hivewire.core.clock import now_ms, ts_from_ms
from hivewire.v1 import task_pb2
from hivewire_services.common import principal, tenancy
from hivewire_services.common.errors import FailedPrecondition, NotFound
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.validation import check_page_size, parse_stream_id
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.tasks import scripts
from hivewire_services.coordinator.tasks.store import TaskStore

SCAN_PAGES = 20
"""Stream pages one ListDeadLetters call reads at most while filtering by tenant."""


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
        """Newest first. A caller of one tenant gets its tenant's entries only (each entry
        names its task's tenant); at most SCAN_PAGES stream pages are read per call, so a
        page may come back short, with a token to go on from."""
        size = check_page_size(page_size)
        top = "+"
        if page_token:
            if parse_stream_id(page_token, "page_token") == (0, 0):
                return DeadLetterPage([], "")  # nothing is older (Redis refuses "(0-0")
            top = "(" + page_token
        only = tenancy.scope()
        out: list[task_pb2.DeadLetter] = []
        for _ in range(SCAN_PAGES):
            rows = cast(
                list[tuple[bytes, dict[bytes, bytes]]],
                await self.redis.xrevrange(self.keys.dead_letters, top, "-", count=size),
            )
            if not rows:
                return DeadLetterPage(out, "")
            top = "(" + rows[-1][0].decode()
            mine = [r for r in rows if only is None or _tenant(r[1]) == only]
            task_ids = [fields.get(b"task_id", b"").decode() for _, fields in mine]
            tasks = await self.store.get_many(task_ids) if task_ids else []
            for (entry_id, fields), task in zip(mine, tasks, strict=True):
                out.append(_dead_letter(entry_id.decode(), fields, task))
                if len(out) == size:
                    return DeadLetterPage(out, entry_id.decode())
            if len(rows) < size:
                return DeadLetterPage(out, "")
        return DeadLetterPage(out, top[1:])

    async def retry(self, dead_letter_id: str) -> task_pb2.Task:
        """Re-queue the task of a dead letter with a fresh attempt budget; the entry goes away."""
        parse_stream_id(dead_letter_id, "dead_letter_id")
        rows = cast(
            list[tuple[bytes, dict[bytes, bytes]]],
            await self.redis.xrange(self.keys.dead_letters, dead_letter_id, dead_letter_id),
        )
        # An entry's tenant never changes: one the caller may not see is a missing one.
        if rows and not principal.current().sees(_tenant(rows[0][1])):
            raise _not_found(dead_letter_id)
        reply = await self._retry(now_ms(), dead_letter_id)
        code = reply[0]
        if code == "NOT_FOUND":
            raise _not_found(dead_letter_id)
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


def _not_found(dead_letter_id: str) -> NotFound:
    return NotFound(f"dead letter {dead_letter_id} not found", reason="DEAD_LETTER_NOT_FOUND")


def _tenant(fields: dict[bytes, bytes]) -> str:
    """The tenant of a dead-letter entry (entries written before tenants: the default)."""
    return tenancy.tenant_of(fields.get(b"tenant"))


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
