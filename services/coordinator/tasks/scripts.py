"""Typed calls of the task scripts: each wrapper owns its script's KEYS and ARGV layout.

A row type's field order is the ARGV layout of one row: it reaches the script as generated
index constants (`local NAME_WIDTH = n`, `local NAME_FIELD = i`, lua.lua_row) that the script
reads rows by.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, NamedTuple, cast

from hivewire_services.common import lua
from hivewire_services.common.alarm import due_ms
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.task_fields import NewTask, PeekedTask
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.tasks import tasklua
from hivewire_services.coordinator.tasks.tasklua import (
    REQUEST_ID_TTL_SECONDS,
    Arg,
    ContextScript,
    flatten,
)

_HERE = Path(__file__).parent


class SubmitRow(NamedTuple):
    task: NewTask
    request_key: str
    """The request_id key (keys.request_id), '' for none."""
    payload: bytes


class AssignRow(NamedTuple):
    task_id: str
    agent_id: str
    attempt: int
    token: str
    envelope: bytes


class CompleteRow(NamedTuple):
    entry_id: bytes
    task_id: str
    attempt: int
    token: str
    agent_id: str
    outcome: int
    result: bytes
    error: str
    start_ms: int | str
    end_ms: int | str
    jitter: float


class ProgressRow(NamedTuple):
    """The head of a progress.lua report; its `chunks` OutputChunk bytes follow it in ARGV."""

    entry_id: bytes
    task_id: str
    attempt: int
    token: str
    agent_id: str
    start_ms: int | str
    progress: bytes
    """TaskProgress bytes (time set), b'' when the report carries none."""
    message: str
    """The progress message, for the task.progress event's `message`."""
    chunks: int


class ProgressReport(NamedTuple):
    row: ProgressRow
    chunks: Sequence[bytes]
    """OutputChunk bytes, in order (len(chunks) == row.chunks)."""


class ReclaimRow(NamedTuple):
    entry_id: bytes
    task_id: str
    """'' for an entry that names no valid task: it is only acknowledged and deleted."""
    attempt: int


class CountRow(NamedTuple):
    entry_id: bytes
    counter: str
    """The counter field to increment ('' counts nothing)."""


class Submitted(NamedTuple):
    """What one submit.lua call did."""

    ids: list[str]
    """Per row the id created, or the earlier one of its request_id."""
    codes: list[int]
    """Per offer its assign code (Assign's codes; -1 when not tried)."""
    loads: list[int]
    """Per offer the slots its agent has taken after the call (-1 when not read)."""


class Submit(ContextScript):
    """submit.lua: create tasks, then assign those offered an agent (eager dispatch) where
    nothing waits ahead of them.

    ARGV: the text columns as one JSON array (far cheaper for redis-py to pack than an argument
    each), numbers as text too (Lua parses and formats numbers slowly: the hash stores text
    anyway), then the payloads as bytes, then the offers."""

    name = "submit"
    layouts: ClassVar[lua.Layouts] = {"ASSIGN_ROW": AssignRow._fields}
    extra = (tasklua.FLOWGATE, tasklua.ASSIGNLIB)

    async def __call__(
        self, now: int, rows: Sequence[SubmitRow], offers: Sequence[AssignRow] = ()
    ) -> Submitted:
        table = [[*map(str, row.task), row.request_key] for row in rows]
        args: list[Arg] = [
            REQUEST_ID_TTL_SECONDS,
            len(rows),
            json.dumps(table, ensure_ascii=False).encode(),
            *(row.payload for row in rows),
            len(offers),
            *flatten(offers),
        ]
        keys = [self.keys.tasks_index, self.keys.task_seq, self.keys.paused_queues]
        ids, codes, loads = await self.call(now, keys, args)
        return Submitted(
            [r.decode() for r in ids], [int(c) for c in codes], [int(n) for n in loads]
        )


class Promote:
    """promote.lua: move up to `limit` tasks whose backoff or delayed start passed to their queues;
    (how many, when the next waiting one is due in epoch ms or None)."""

    def __init__(self, redis: Redis, keys: Keys, settings: CoordinatorSettings) -> None:
        self.keys = keys
        self.settings = settings
        self._script = tasklua.register(
            redis, "promote", context=False, extra=(tasklua.PROMOTELIB,)
        )

    async def __call__(self, now: int, limit: int) -> tuple[int, int | None]:
        moved, next_due = await self._script(
            keys=[self.keys.due, self.keys.events],
            args=[self.keys.prefix, now, limit, self.settings.events_maxlen],
        )
        return int(moved), due_ms(next_due)


class PassRead(NamedTuple):
    """What a scheduling pass read (peek.lua)."""

    promoted: int
    next_due: int | None
    """When the earliest task still in the due set is due (epoch ms), None when none is."""
    load: dict[str, int]
    """Slots taken per agent id."""
    queues: list[dict[str, PeekedTask]]
    """Per capability asked for, the head of its queue by task id (empty when it has no free
    slot, nothing pending, or is paused)."""


class Peek:
    """peek.lua: promote due tasks (up to `promote` of them), read the agents' load, then per
    capability with free slots and not paused the head of its queue: at most `free + lookahead`
    tasks, and no more once `free` tasks without labels are read (free: the slots its agents
    have free, at most `batch`)."""

    def __init__(self, redis: Redis, keys: Keys, settings: CoordinatorSettings) -> None:
        self.keys = keys
        self.settings = settings
        self._script = tasklua.register(redis, "peek", context=False, extra=(tasklua.PROMOTELIB,))

    async def __call__(
        self,
        now: int,
        promote: int,
        batch: int,
        lookahead: int,
        caps: Sequence[tuple[str, Sequence[tuple[str, int]]]],
    ) -> PassRead:
        """`caps`: per capability its name and its agents' (agent id, max_concurrency)."""
        args: list[Arg] = [
            self.keys.prefix, now, promote, self.settings.events_maxlen, batch, lookahead,
        ]  # fmt: skip
        for cap, agents in caps:
            args += [cap, len(agents)]
            for agent_id, max_concurrency in agents:
                args += [agent_id, max_concurrency]
        keys = [self.keys.due, self.keys.events, self.keys.agent_load, self.keys.paused_queues]
        raw = cast(
            list[object],
            await self._script(keys=keys + [self.keys.pending(c) for c, _ in caps], args=args),
        )
        flat_load = cast(list[bytes], raw[2])
        load = {flat_load[i].decode(): int(flat_load[i + 1]) for i in range(0, len(flat_load), 2)}
        width = 1 + len(PeekedTask._fields)
        # tuple.__new__ is PeekedTask._make without its length check (the width is exact).
        queues = [
            {
                cast(bytes, flat[i]).decode(): tuple.__new__(PeekedTask, flat[i + 1 : i + width])
                for i in range(0, len(flat), width)
            }
            for flat in cast(list[list[bytes | None]], raw[3:])
        ]
        return PassRead(int(cast(int, raw[0])), due_ms(raw[1]), load, queues)


class Assign(ContextScript):
    """assign.lua: one code per row (1 applied, 0 not pending, 2 agent offline, 3 no slot,
    4 parked on a concurrency key, 5 cancelled by a concurrency strategy, 6 rate limited)."""

    name = "assign"
    layouts: ClassVar[lua.Layouts] = {"ASSIGN_ROW": AssignRow._fields}
    extra = (tasklua.FLOWGATE, tasklua.ASSIGNLIB)

    async def __call__(self, now: int, rows: Sequence[AssignRow]) -> list[int]:
        codes = await self.call(now, (), [len(rows), *flatten(rows)])
        return [int(c) for c in codes]


class Supersede(ContextScript):
    """supersede.lua: CANCEL_IN_PROGRESS at submission; returns how many tasks it cancelled."""

    name = "supersede"
    extra = (tasklua.FLOWGATE,)

    async def __call__(self, now: int, task_ids: Sequence[str]) -> int:
        return int(await self.call(now, (), list(task_ids)))


class Complete(ContextScript):
    """complete.lua: apply results, XACK and XDEL their entries; returns
    (applied, ignored, retried, failed, foreign)."""

    name = "complete"
    layouts: ClassVar[lua.Layouts] = {"COMPLETE_ROW": CompleteRow._fields}

    async def __call__(self, now: int, group: str, rows: Sequence[CompleteRow]) -> list[int]:
        reply = await self.call(now, [self.keys.results], [group, len(rows), *flatten(rows)])
        return [int(v) for v in reply]


class Progress(ContextScript):
    """progress.lua: apply PROGRESS reports in order, XACK and XDEL their entries; returns
    (applied, ignored, chunks stored, chunks dropped, foreign)."""

    name = "progress"
    layouts: ClassVar[lua.Layouts] = {"PROGRESS_ROW": ProgressRow._fields}

    async def __call__(self, now: int, group: str, reports: Sequence[ProgressReport]) -> list[int]:
        args: list[Arg] = [group, self.settings.task_output_max_bytes, len(reports)]
        for row, chunks in reports:
            args += row
            args += chunks
        reply = await self.call(now, [self.keys.results], args)
        return [int(v) for v in reply]


class Cancel(ContextScript):
    """cancel.lua: the task's previous state (0 when it does not exist)."""

    name = "cancel"

    async def __call__(self, now: int, task_id: str) -> int:
        return int(await self.call(now, (), [task_id]))


class Reaped(NamedTuple):
    """What one reap.lua call did, and when the earliest lease or deadline left is due."""

    leases: int
    attempts: int
    timed_out: int
    next_due: int | None


class Reap(ContextScript):
    """reap.lua: leases expired, attempts timed out, tasks timed out (up to `limit` each), and
    the next due time (epoch ms; None when nothing waits)."""

    name = "reap"

    async def __call__(self, now: int, limit: int, jitter: float) -> Reaped:
        leases, attempts, timed_out, next_due = await self.call(now, (), [limit, jitter])
        return Reaped(int(leases), int(attempts), int(timed_out), due_ms(next_due))


class Reclaim(ContextScript):
    """reclaim.lua: re-queue an offline agent's inbox entries; with no rows, forget the agent
    if its inbox is empty (1 when done)."""

    name = "reclaim"
    layouts: ClassVar[lua.Layouts] = {"RECLAIM_ROW": ReclaimRow._fields}

    async def __call__(
        self, now: int, group: str, agent_id: str, jitter: float, rows: Sequence[ReclaimRow]
    ) -> int:
        keys = [self.keys.inbox(agent_id), self.keys.reclaim_agents]
        args = [group, agent_id, jitter, len(rows), *flatten(rows)]
        return int(await self.call(now, keys, args))


class RetryDead(ContextScript):
    """retry_dead.lua: a status code then its details (see the script)."""

    name = "retry_dead"

    async def __call__(self, now: int, dead_letter_id: str) -> list[str]:
        raw = await self.call(now, (), [dead_letter_id])
        return [r.decode() if isinstance(r, bytes) else str(r) for r in raw]


class CountEvents:
    """metrics_feed.lua: XACK each entry in `group`, counting those acked first; 1/0 per row."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.keys = keys
        layouts = {"COUNT_ROW": CountRow._fields}
        self._script = lua.register(redis, _HERE / "metrics_feed.lua", layouts=layouts)

    async def __call__(self, group: str, rows: Sequence[CountRow]) -> list[int]:
        reply = await self._script(
            keys=[self.keys.events, self.keys.task_counters],
            args=[group, len(rows), *flatten(rows)],
        )
        return [int(a) for a in reply]
