"""Reading a chaos run's record out of Redis (after every service and agent has stopped)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from bench.chaos.checker import Accepted, Record, TaskRow
from hivewire_services.common.events import decode_entry
from hivewire_services.common.keys import Keys, task_state_indexes
from hivewire_services.common.redis import Redis

PAGE = 5000


def read_ledger(path: Path) -> list[Accepted]:
    """The acknowledged submissions the driver wrote, one JSON object a line."""
    if not path.exists():
        return []
    return [Accepted.from_json(line) for line in path.read_text().splitlines() if line.strip()]


async def load_record(redis: Redis, keys: Keys, accepted: Sequence[Accepted]) -> Record:
    indexed: set[str] = set()
    for index in task_state_indexes(keys):  # together they hold every task
        indexed |= {m.decode() for m in cast(list[bytes], await redis.zrange(index, 0, -1))}
    ids = sorted(indexed | {a.task_id for a in accepted})
    tasks: dict[str, TaskRow | None] = {}
    for start in range(0, len(ids), PAGE):
        chunk = ids[start : start + PAGE]
        async with redis.pipeline(transaction=False) as pipe:
            for task_id in chunk:
                pipe.hmget(keys.task(task_id), ["state", "attempt", "result"])
            rows = await pipe.execute()
        for task_id, (state, attempt, result) in zip(chunk, rows, strict=True):
            tasks[task_id] = (
                None
                if state is None
                else TaskRow(int(state), int(attempt or 0), bytes(result or b""))
            )
    events = [decode_entry(i, f) for i, f in await _all_entries(redis, keys.events)]
    dead = [
        f.get(b"task_id", b"").decode() for _, f in await _all_entries(redis, keys.dead_letters)
    ]
    executions: dict[tuple[str, int], int] = {}
    raw = cast(dict[bytes, bytes], await redis.hgetall(keys.chaos_executions))
    for field, count in raw.items():
        task_id, _, attempt = field.decode().partition(":")
        executions[(task_id, int(attempt))] = int(count)
    return Record(
        accepted=list(accepted),
        tasks=tasks,
        indexed=indexed,
        events=events,
        events_complete=await _complete(redis, keys.events, len(events)),
        dead_letters=dead,
        executions=executions,
    )


async def _all_entries(redis: Redis, stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    out: list[tuple[bytes, dict[bytes, bytes]]] = []
    start = "-"
    while True:
        page = cast(
            list[tuple[bytes, dict[bytes, bytes]]],
            await redis.xrange(stream, min=start, max="+", count=PAGE),
        )
        out.extend(page)
        if len(page) < PAGE:
            return out
        start = "(" + page[-1][0].decode()


async def _complete(redis: Redis, stream: str, read: int) -> bool:
    """Whether every entry ever added to `stream` is still there (none trimmed or deleted)."""
    if not await redis.exists(stream):
        return read == 0
    info = cast(dict[Any, Any], await redis.xinfo_stream(stream))
    added = info.get("entries-added", info.get(b"entries-added"))
    return added is not None and int(added) == read
