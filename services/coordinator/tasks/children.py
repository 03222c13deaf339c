"""Child tasks: a running task spawns tasks (ctx.spawn) that join its workflow and trace and
are cancelled with it. The parent is proven by its current attempt token (spawn.lua)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from typing import cast

import grpc

from hivewire.core.clock import now_ms
from hivewire.v1 import task_pb2
from hivewire_services.common import principal
from hivewire_services.common.errors import (
    FailedPrecondition,
    HivewireError,
    NotFound,
)
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.submission import ValidTask
from hivewire_services.common.task_fields import NewTask
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.tasks import tasklua
from hivewire_services.coordinator.tasks.store import TaskStore
from hivewire_services.coordinator.tasks.tasklua import REQUEST_ID_TTL_SECONDS

# Cancelling a parent cancels its children, theirs, and so on, this deep at most.
MAX_DEPTH = 8
# A parent may have at most this many children cancelled with it (the set is read at once).
MAX_CHILDREN = 10_000


class NotTheParent(
    HivewireError, code=grpc.StatusCode.PERMISSION_DENIED, reason="NOT_THE_PARENT_ATTEMPT"
):
    """A spawn whose attempt token is not the parent's running attempt's."""


class ChildTasks:
    """Spawns children under a running parent and cancels a parent's children."""

    def __init__(
        self, redis: Redis, keys: Keys, settings: CoordinatorSettings, tasks: TaskStore
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.tasks = tasks
        self._spawn = tasklua.register(redis, "spawn", context=False)

    async def spawn(self, spec: ValidTask, parent_id: str, token: str) -> task_pb2.Task:
        """Create the child if `token` is the parent's running attempt's; the child as stored."""
        task_id = uuid.uuid4().hex
        request_key = ""
        if spec.request_id:
            # Scoped by the parent: one parent's request_id never yields another's child.
            digest = hashlib.sha256(f"{parent_id}\0{spec.request_id}".encode()).hexdigest()
            request_key = self.keys.request_id(digest)
        new = NewTask(
            task_id=task_id,
            capability=spec.capability,
            priority=spec.priority,
            max_attempts=spec.max_attempts,
            labels=json.dumps(spec.required_labels, sort_keys=True),
            request_id=spec.request_id,
            timeout_ms=spec.timeout_ms,
            trace_id="",
            workflow_id="",
            step_id="",
            s2s_ms=spec.schedule_to_start_ms,
            hb_ms=spec.heartbeat_timeout_ms,
            backoff_ms=spec.retry_initial_backoff_ms,
            backoff_max_ms=spec.retry_max_backoff_ms,
            progress_ms=spec.progress_timeout_ms,
        )
        row = json.dumps([*new, request_key])
        now = now_ms()
        got = cast(
            list[bytes | int],
            await self._spawn(
                keys=[
                    *tasklua.creation_keys(self.keys),
                    self.keys.task(parent_id),
                    self.keys.task_children(parent_id),
                ],
                args=[
                    *tasklua.creation_args(self.keys, self.settings, now),
                    REQUEST_ID_TTL_SECONDS,
                    token,
                    int(self.settings.task_retention_seconds * 1000),
                    row,
                    spec.payload,
                    parent_id,
                    principal.current().name,
                ],
            ),
        )
        code, value = int(got[0]), got[1]
        text = value.decode() if isinstance(value, bytes) else str(value)
        if code == 0:
            raise NotFound(f"parent task {parent_id} not found", reason="TASK_NOT_FOUND")
        if code == -1:
            raise NotTheParent("parent_attempt_token is not the parent's running attempt's")
        if code == -2:
            state = task_pb2.TaskState.Name(int(text))  # type: ignore[arg-type]
            raise FailedPrecondition(
                f"parent task {parent_id} is {state.removeprefix('TASK_STATE_')}, not running",
                reason="PARENT_NOT_RUNNING",
            )
        self.tasks.submitted()  # wake the scheduler
        return await self.tasks.get(text)

    async def cancel_children(self, task_id: str, depth: int = 0) -> int:
        """Cancel every unfinished child of the task (and theirs); how many were cancelled."""
        if depth >= MAX_DEPTH:
            return 0
        members = cast(
            list[bytes],
            await self.redis.srandmember(self.keys.task_children(task_id), MAX_CHILDREN),
        )
        cancelled = 0
        for raw in members:
            child = raw.decode()
            with contextlib.suppress(NotFound, FailedPrecondition):
                await self.tasks.cancel(child)
                cancelled += 1
            cancelled += await self.cancel_children(child, depth + 1)
        return cancelled
