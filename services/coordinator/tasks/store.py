"""Task storage: submit, read, list and cancel tasks; each write is one Lua script."""

from __future__ import annotations

import builtins
import heapq
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from hivewire.core.clock import now_ms
from hivewire.v1 import task_pb2
from hivewire_services.common import lua, principal, tenancy
from hivewire_services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from hivewire_services.common.keys import Keys, task_state_indexes
from hivewire_services.common.rate_limits import RateLimits
from hivewire_services.common.redis import Redis
from hivewire_services.common.store import RedisStore
from hivewire_services.common.submission import ValidTask
from hivewire_services.common.task_fields import NewTask
from hivewire_services.common.validation import check_id, check_page_size, parse_sequence_token
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.tasks import scripts
from hivewire_services.coordinator.tasks.dispatch_tracing import submit_traceparents
from hivewire_services.coordinator.tasks.eager import EagerDispatch, submit_with_offers
from hivewire_services.coordinator.tasks.model import (
    STATE_AT,
    TASK_FIELDS,
    TERMINAL_STATES,
    assigned_at,
    task_from_new,
    task_from_values,
)

_Rows = list[tuple[bytes, float]]
"""(member, score) pairs of a sorted set."""


@dataclass(frozen=True)
class TaskPage:
    tasks: list[task_pb2.Task]
    next_page_token: str


class TaskStore(RedisStore[CoordinatorSettings]):
    """Reads and writes tasks in Redis. Knows nothing of gRPC."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        settings: CoordinatorSettings,
        on_deadline: Callable[[int], None] | None = None,
        on_submitted: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(redis, keys, settings)
        # Hears of the earliest schedule-to-start deadline of each submitted batch.
        self._on_deadline = on_deadline
        # Hears of every submitted batch, whoever submitted it (the scheduler wakes for it).
        self._on_submitted = on_submitted or (lambda: None)
        self._submit = scripts.Submit(redis, keys, settings)
        # Set by the coordinator once its scheduler runs: tasks an agent has room for are then
        # assigned by the submit itself (eager.py); without it every task waits for a pass.
        self.eager: EagerDispatch | None = None
        self._cancel = scripts.Cancel(redis, keys, settings)
        self._supersede = scripts.Supersede(redis, keys, settings)
        self.rate_limits = RateLimits(redis, keys)
        self._expire = lua.Expire(
            redis,
            keys.finished,
            keys.tasks_index,
            keys.task_prefix,
            keys.tasks_by_state_prefix,
            keys.tenant_tasks_prefix,
            companions=(keys.output_prefix,),
        )

    async def submit(self, specs: Sequence[ValidTask]) -> list[task_pb2.Task]:
        """Create tasks atomically; a known request_id yields the task it created before."""
        out: list[task_pb2.Task] = []
        for outcome in await self.submit_each(specs):
            if isinstance(outcome, NotFound):
                raise outcome
            out.append(outcome)
        return out

    async def submit_each(self, specs: Sequence[ValidTask]) -> list[task_pb2.Task | NotFound]:
        """`submit`, with the outcome of each row: its task, or NotFound for a request_id whose
        task expired (callers whose rows are batched together fail only for their own row)."""
        if any(spec.rate_limit_units for spec in specs):
            where = "" if len(specs) == 1 else "tasks[{}]."
            await self.rate_limits.check_units(
                (where.format(i), spec.rate_limit_units) for i, spec in enumerate(specs)
            )
        now = now_ms()
        rows: list[scripts.SubmitRow] = []
        new_ids = []
        tenant = tenancy.creating_tenant()
        traceparents = submit_traceparents([spec.trace_id for spec in specs])
        for spec, traceparent, task_id in zip(
            specs, traceparents, _new_task_ids(len(specs)), strict=True
        ):
            new_ids.append(task_id)
            request_key = ""
            if spec.request_id:
                request_key = self.keys.request_id(tenancy.request_digest(tenant, spec.request_id))
            labels = spec.required_labels
            new = NewTask(
                task_id=task_id,
                capability=spec.capability,
                priority=spec.priority,
                max_attempts=spec.max_attempts,
                labels=json.dumps(labels, sort_keys=True) if labels else "{}",
                request_id=spec.request_id,
                timeout_ms=spec.timeout_ms,
                trace_id=traceparent,
                workflow_id=spec.workflow_id,
                step_id=spec.step_id,
                s2s_ms=spec.schedule_to_start_ms,
                hb_ms=spec.heartbeat_timeout_ms,
                backoff_ms=spec.retry_initial_backoff_ms,
                backoff_max_ms=spec.retry_max_backoff_ms,
                progress_ms=spec.progress_timeout_ms,
                tenant=tenant,
                fairness_key=spec.fairness_key,
                fairness_weight=spec.fairness_weight,
                due_ms=due_time(now, spec.start_after_ms, spec.start_at_ms),
                ckey=spec.concurrency_key,
                climit=spec.concurrency_limit,
                cstrategy=spec.concurrency_strategy,
                rate=json.dumps(spec.rate_limit_units) if spec.rate_limit_units else "",
            )
            rows.append(scripts.SubmitRow(new, request_key, spec.payload))
        ids, assigned = await submit_with_offers(self.eager, self._submit, now, specs, rows)
        newest_win = [
            task_id
            for spec, task_id, new_id in zip(specs, ids, new_ids, strict=True)
            if task_id == new_id
            and spec.concurrency_strategy == task_pb2.CONCURRENCY_STRATEGY_CANCEL_IN_PROGRESS
        ]
        if newest_win:
            await self._supersede(now, newest_win)
        if len(assigned) < len(rows):
            self._on_submitted()  # the scheduler takes the tasks not assigned already
        deadlines = [
            max(now, row.task.due_ms) + spec.schedule_to_start_ms
            for spec, row in zip(specs, rows, strict=True)
            if spec.schedule_to_start_ms and row.task.task_id not in assigned
        ]
        if deadlines and self._on_deadline is not None:
            self._on_deadline(min(deadlines))
        out: list[task_pb2.Task | NotFound] = []
        known = [i for i, (got, new) in enumerate(zip(ids, new_ids, strict=True)) if got != new]
        existing = await self.get_many([ids[i] for i in known]) if known else []
        by_index = dict(zip(known, existing, strict=True))
        for i, (spec, row) in enumerate(zip(specs, rows, strict=True)):
            if i in by_index:
                earlier = by_index[i]
                # None: expired by retention while its request_id lived on
                out.append(
                    earlier
                    if earlier is not None
                    else NotFound(f"task {ids[i]} of request_id {spec.request_id!r} expired")
                )
                continue
            task = task_from_new(row.task, row.payload, now, spec.required_labels)
            if (offer := assigned.get(row.task.task_id)) is not None:
                assigned_at(task, offer.agent_id, now)
            out.append(task)
        return out

    async def get(self, task_id: str) -> task_pb2.Task:
        check_id(task_id, "task_id")
        [task] = await self.get_many([task_id])
        if task is None or not principal.current().sees(task.tenant):
            raise _not_found(task_id)
        if principal.current().role == "agent":
            spawner = await self.redis.hget(self.keys.task(task_id), "spawned_by")
            if not _reaches(spawner):
                raise _not_found(task_id)
        return task

    async def check_visible(self, task_id: str) -> None:
        """NotFound, as for a missing task, unless the task exists and the caller sees it."""
        check_id(task_id, "task_id")
        state, tenant, spawner = await self.redis.hmget(
            self.keys.task(task_id), ["state", "tenant", "spawned_by"]
        )
        if state is None or not tenancy.visible(tenant) or not _reaches(spawner):
            raise _not_found(task_id)

    async def get_many(self, task_ids: Sequence[str]) -> list[task_pb2.Task | None]:
        """Tasks by id in one round trip; None where a task does not exist."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for task_id in task_ids:
                pipe.hmget(self.keys.task(task_id), TASK_FIELDS)
            rows = await pipe.execute()
        return [
            task_from_values(task_id, row) if row[STATE_AT] is not None else None
            for task_id, row in zip(task_ids, rows, strict=True)
        ]

    async def list(
        self, *, page_size: int, page_token: str, state: int, capability: str
    ) -> TaskPage:
        """Newest first; filters by state (an index per state) and capability (scanned).

        A caller of one tenant walks its tenant's index (state scanned); the default tenant's
        tasks carry no tenant and are found in the global indexes."""
        size = check_page_size(page_size)
        before = parse_sequence_token(page_token)
        if state and state not in task_pb2.TaskState.values():
            raise InvalidArgument(f"unknown state {state}", field="state")
        indexes = [self.keys.tasks_by_state(str(state))] if state else task_state_indexes(self.keys)
        only = tenancy.scope()
        if only is not None and only != principal.DEFAULT_TENANT:
            indexes = [self.keys.tenant_tasks(only)]
        found: list[task_pb2.Task] = []
        cursor = before
        scanned = 0
        while len(found) < size and scanned < size * 20:
            rows = await self._newest(indexes, cursor, size)
            if not rows:
                cursor = None
                break
            scanned += len(rows)
            ids = [r[0].decode() for r in rows]
            tasks = await self.get_many(ids)
            for (_, score), task in zip(rows, tasks, strict=True):
                cursor = int(score)
                if task is None or (capability and task.capability != capability):
                    continue
                if (state and task.state != state) or (only and task.tenant != only):
                    continue
                found.append(task)
                if len(found) == size:
                    break
            if len(rows) < size:
                if len(found) < size:
                    cursor = None
                break
        # A page cut short by the scan bound (filters matched little) still carries the cursor.
        token = str(cursor) if cursor is not None else ""
        return TaskPage(found, token)

    async def _newest(self, indexes: Sequence[str], before: int | None, size: int) -> _Rows:
        """The `size` newest entries scored below `before` across `indexes`, newest first; read
        in one MULTI, so a task moving between state indexes is seen in one of them."""
        max_score = f"({before}" if before is not None else "+inf"
        async with self.redis.pipeline(transaction=len(indexes) > 1) as pipe:
            for index in indexes:
                pipe.zrevrangebyscore(index, max_score, "-inf", start=0, num=size, withscores=True)
            found = cast("builtins.list[_Rows]", await pipe.execute())
        if len(found) == 1:
            return found[0]
        return heapq.nlargest(size, (row for rows in found for row in rows), key=lambda r: r[1])

    async def expire(self, cutoff_ms: int, limit: int = 1000) -> int:
        """Delete up to `limit` terminal tasks that ended before the cutoff; returns how many."""
        return await self._expire(cutoff_ms, limit)

    def submitted(self) -> None:
        """Tasks were created outside submit() (a spawned child): wake the scheduler."""
        self._on_submitted()

    async def cancel(self, task_id: str) -> task_pb2.Task:
        # A task's tenant never changes: checked before the script, nothing changes if unseen.
        await self.check_visible(task_id)
        previous = await self._cancel(now_ms(), task_id)
        if previous == 0:
            raise _not_found(task_id)
        if previous in TERMINAL_STATES:
            name = task_pb2.TaskState.Name(cast(task_pb2.TaskState.ValueType, previous))
            raise FailedPrecondition(
                f"task {task_id} already finished ({name})",
                reason="TASK_ALREADY_FINISHED",
            )
        return await self.get(task_id)


def _reaches(spawned_by: bytes | str | None) -> bool:
    """An agent reaches (reads, cancels) only the child tasks its principal spawned; every
    other role is held to its tenant alone."""
    who = principal.current()
    if who.role != "agent":
        return True
    name = spawned_by.decode() if isinstance(spawned_by, bytes) else spawned_by
    return name == who.name


def _not_found(task_id: str) -> NotFound:
    """The one answer for a task that does not exist or that the caller may not see."""
    return NotFound(f"task {task_id} not found", reason="TASK_NOT_FOUND")


def due_time(now: int, start_after_ms: int, start_at_ms: int) -> int:
    """When a delayed task may start (epoch ms), 0 when it may start now."""
    due = max(now + start_after_ms if start_after_ms else 0, start_at_ms)
    return due if due > now else 0


def _new_task_ids(n: int) -> list[str]:
    """n random UUID4s as 32 hex characters (uuid.uuid4().hex, with one urandom call)."""
    raw = bytearray(os.urandom(16 * n))
    for i in range(0, 16 * n, 16):
        raw[i + 6] = raw[i + 6] & 0x0F | 0x40  # version 4
        raw[i + 8] = raw[i + 8] & 0x3F | 0x80  # RFC 4122 variant
    return [raw[i : i + 16].hex() for i in range(0, 16 * n, 16)]
