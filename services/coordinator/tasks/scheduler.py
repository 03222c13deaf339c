"""The scheduler: matches pending tasks to live agents with free slots, least loaded first."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from hivewire.core.clock import duration_from_seconds, now_ms, ts_from_ms
from hivewire.v1 import stream_pb2
from hivewire_services.common.alarm import Alarm
from hivewire_services.common.keys import Keys
from hivewire_services.common.loops import Backoff
from hivewire_services.common.redis import Redis
from hivewire_services.common.task_fields import PeekedTask
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.tasks import scripts
from hivewire_services.coordinator.tasks.agent_cache import AgentCache, CachedAgent
from hivewire_services.coordinator.tasks.dispatch_tracing import end_dispatch, start_dispatch
from hivewire_services.coordinator.tasks.scripts import AssignRow

logger = logging.getLogger(__name__)

# Tasks looked at beyond the free slots, so a head task whose labels match no agent
# does not block the ones behind it.
LOOKAHEAD = 64
# After the assignment script refused a pairing the cache proposed (the agent went offline or
# its slots were full in Redis), the next pass comes this soon: the cache catches up meanwhile.
REFUSED_RETRY_MS = 200
REFUSED = (2, 3)
# Codes of tasks flow control took out of the pending queue (flowgate.lua).
PARKED = (4, 5, 6)


@dataclass
class Assignment:
    row: AssignRow
    span: Any = None
    deadline_ms: int = 0
    """When the attempt's lease (or start-to-close deadline) runs out, if it is assigned."""


def plan(
    tasks: list[tuple[str, dict[str, str]]],
    agents: list[CachedAgent],
    load: dict[str, int],
) -> list[tuple[str, str]]:
    """Pair tasks (in queue order) with agents: matching labels, a free slot, least loaded.

    `load` is updated in place with the slots this plan takes.
    """
    pairs: list[tuple[str, str]] = []
    for task_id, required in tasks:
        best: CachedAgent | None = None
        for agent in agents:
            used = load.get(agent.agent_id, 0)
            if used >= agent.max_concurrency or not agent.matches(required):
                continue
            if best is None or (used, -agent.max_concurrency) < (
                load.get(best.agent_id, 0),
                -best.max_concurrency,
            ):
                best = agent
        if best is not None:
            load[best.agent_id] = load.get(best.agent_id, 0) + 1
            pairs.append((task_id, best.agent_id))
    return pairs


def _labels(raw: bytes | None) -> dict[str, str]:
    """A task's required labels (most tasks have none: skip the JSON parse)."""
    if not raw or raw == b"{}":
        return {}
    return cast(dict[str, str], json.loads(raw))


class Scheduler:
    """Runs a scheduling pass when woken (submit, result, agent change), when the next retry
    comes due, and otherwise every `scheduler_interval` (a safety pass); idle, it sleeps.

    `on_deadline(ms)` hears when the attempts it assigns run out of lease or time, so the
    reclaimer can sleep until then.
    """

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        settings: CoordinatorSettings,
        cache: AgentCache,
        on_deadline: Callable[[int], None] | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.cache = cache
        self._assign = scripts.Assign(redis, keys, settings)
        self._promote = scripts.Promote(redis, keys, settings)
        self._peek = scripts.Peek(redis, keys, settings)
        self._on_deadline = on_deadline
        self.alarm = Alarm(settings.scheduler_interval)
        self.assigned_total = 0
        # Slots taken per agent: the last pass's read plus what was assigned here since (and
        # what eager dispatch's submit calls read). An estimate for proposing: Redis decides.
        self.load: dict[str, int] = {}

    def wake(self) -> None:
        self.alarm.now()

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            await self.alarm.wait()
            try:
                # Each pass promotes the tasks come due first, in the call that reads the queues.
                while await self.schedule_once(promote=True) >= self.settings.scheduler_batch:
                    pass  # a full batch: more may be waiting
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.alarm.now()  # try again once the backoff has passed
                await backoff.failed("scheduler pass", exc)

    async def promote_due(self) -> int:
        """Move tasks whose retry backoff or delayed start has passed to their pending queue;
        the alarm is set for the next one still waiting."""
        batch = self.settings.scheduler_batch
        moved, next_due = await self._promote(now_ms(), batch)
        self.alarm.at(next_due)
        if moved >= batch:
            self.alarm.now()  # more may be due already
        return moved

    async def schedule_once(self, promote: bool = False) -> int:
        """One pass over every capability with live agents and a queue no operator paused
        (after promote_due's work when `promote`); returns assignments applied."""
        batch = self.settings.scheduler_batch
        caps = self.cache.capabilities()
        if not caps and not promote:
            return 0
        agents_of = {cap: self.cache.for_capability(cap) for cap in caps}
        read = await self._peek(
            now_ms(),
            batch if promote else 0,
            batch,
            LOOKAHEAD,
            [(cap, [(a.agent_id, a.max_concurrency) for a in agents_of[cap]]) for cap in caps],
        )
        if promote:
            self.alarm.at(read.next_due)
            if read.promoted >= batch:
                self.alarm.now()  # more may be due already
        load = read.load
        self.load = dict(load)
        # Free slots as the pass found them (plan takes slots from `load` as it goes).
        free = {
            cap: min(
                batch, sum(max(0, a.max_concurrency - load.get(a.agent_id, 0)) for a in agents)
            )
            for cap, agents in agents_of.items()
        }
        assignments: list[Assignment] = []
        now = now_ms()
        for cap, rows in zip(caps, read.queues, strict=True):
            if not rows:
                continue
            tasks = [(task_id, _labels(row.labels)) for task_id, row in rows.items()]
            for task_id, agent_id in plan(tasks, agents_of[cap], load)[: free[cap]]:
                assignments.append(self.prepare(task_id, agent_id, cap, rows[task_id], now))
        if not assignments:
            return 0
        return await self._apply(assignments, now)

    def prepare(
        self, task_id: str, agent_id: str, capability: str, row: PeekedTask, now: int
    ) -> Assignment:
        """The next attempt of a pending task on an agent: token, envelope, dispatch span."""
        attempt = int(row.attempt or 0) + 1
        token = secrets.token_hex(16)
        envelope = stream_pb2.TaskEnvelope(
            task_id=task_id,
            attempt=attempt,
            attempt_token=token,
            capability=capability,
            payload=row.payload or b"",
            agent_id=agent_id,
            workflow_id=(row.workflow_id or b"").decode(),
        )
        envelope.assign_time.CopyFrom(ts_from_ms(now))
        timeout_ms = int(row.timeout_ms or 0)
        if timeout_ms:
            envelope.attempt_timeout.CopyFrom(duration_from_seconds(timeout_ms / 1000))
        progress_ms = int(row.progress_ms or 0)
        if progress_ms:
            envelope.progress_timeout.CopyFrom(duration_from_seconds(progress_ms / 1000))
        span, envelope.traceparent = start_dispatch(envelope, (row.trace_id or b"").decode())
        assign = AssignRow(task_id, agent_id, attempt, token, envelope.SerializeToString())
        # As assign.lua sets them: the lease (the task's heartbeat timeout, else the default),
        # the start-to-close backstop and the progress deadline.
        lease_ms = int(row.hb_ms or 0) or int(self.settings.task_lease_seconds * 1000)
        deadline = now + lease_ms
        if timeout_ms:
            deadline = min(deadline, now + timeout_ms + min(timeout_ms, 1000))
        if progress_ms:
            deadline = min(deadline, now + progress_ms)
        return Assignment(assign, span, deadline)

    async def _apply(self, assignments: list[Assignment], now: int) -> int:
        codes = await self._assign(now, [a.row for a in assignments])
        end_dispatch([a.span for a in assignments], codes)  # a failed call drops its spans
        applied = [a for a, c in zip(assignments, codes, strict=True) if c == 1]
        self.dispatched(applied)
        for a in applied:
            self.load[a.row.agent_id] = self.load.get(a.row.agent_id, 0) + 1
        if any(c in REFUSED for c in codes):
            self.alarm.at(now_ms() + REFUSED_RETRY_MS)
        if any(c in PARKED for c in codes):
            # Their plan's slots are free for the tasks behind: pass again now (the pass
            # starts with promote_due, which sets the alarm for the first rate-limited one).
            self.alarm.now()
        return len(applied)

    def dispatched(self, applied: list[Assignment]) -> None:
        """Assignments applied (by a pass or a submit): the reclaimer hears of their first
        deadline; they count in assigned_total."""
        if applied and self._on_deadline is not None:
            self._on_deadline(min(a.deadline_ms for a in applied))
        self.assigned_total += len(applied)
