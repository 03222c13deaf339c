"""Schedule storage: create, read, list, pause, resume, delete; each write is one Lua script."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from hivewire.core.clock import now_ms, ts_from_ms
from hivewire.v1 import schedule_pb2
from hivewire_services.common import principal
from hivewire_services.common.errors import AlreadyExists, InvalidArgument, NotFound
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.store import RedisStore
from hivewire_services.common.submission import validate_task
from hivewire_services.common.validation import check_page_size, check_schedule_name
from hivewire_services.common.workflow_spec import validate_workflow
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.schedules.model import FIELDS, StoredSchedule, from_values
from hivewire_services.coordinator.schedules.spec import check_fires, check_spec, next_tick

_HERE = Path(__file__).parent
_OVERLAPS = schedule_pb2.OverlapPolicy.values()


@dataclass(frozen=True)
class SchedulePage:
    schedules: list[schedule_pb2.Schedule]
    next_page_token: str


class ScheduleStore(RedisStore[CoordinatorSettings]):
    """Reads and writes schedules in Redis. Knows nothing of gRPC."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        settings: CoordinatorSettings,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(redis, keys, settings)
        self._create, self._control = self.scripts(_HERE, "create", "control")
        # Hears of every schedule created or resumed here (the firing loop wakes for it).
        self._on_change = on_change or (lambda: None)

    async def create(self, request: schedule_pb2.Schedule) -> schedule_pb2.Schedule:
        """Check and store a new schedule owned by the caller's tenant; its first fire is one
        interval (or the next cron time) from now."""
        name = check_schedule_name(request.name, "schedule.name")
        spec = check_spec(request.spec)
        overlap = request.overlap or schedule_pb2.OVERLAP_POLICY_SKIP
        if overlap not in _OVERLAPS:
            raise InvalidArgument(f"unknown overlap policy {overlap}", field="schedule.overlap")
        target = _checked_target(request.target, self.settings)
        now = now_ms()
        first = check_fires(spec, now)
        tenant = principal.current().tenant
        definition = schedule_pb2.Schedule(
            name=name, spec=request.spec, target=target, overlap=overlap, tenant=tenant
        )
        definition.create_time.CopyFrom(ts_from_ms(now))
        created = await self._create(
            keys=[self.keys.schedule(name), self.keys.schedules_index, self.keys.schedules_due,
                  self.keys.events],
            args=[now, self.settings.events_maxlen, name, definition.SerializeToString(), tenant,
                  overlap, now, first],
        )  # fmt: skip
        if not created:
            raise AlreadyExists(
                f"schedule {name!r} already exists", reason="SCHEDULE_EXISTS", field="schedule.name"
            )
        self._on_change()
        return await self.get(name)

    async def load(self, name: str) -> StoredSchedule | None:
        """The schedule whoever asks (the firing loop); None when it does not exist."""
        values = await self.redis.hmget(self.keys.schedule(name), FIELDS)
        return from_values(name, cast(list[bytes | None], values))

    async def visible(self, name: str) -> StoredSchedule:
        """The schedule if the caller's tenant may see it, else NOT_FOUND."""
        check_schedule_name(name)
        stored = await self.load(name)
        if stored is None or not principal.current().sees(stored.tenant):
            raise NotFound(f"schedule {name!r} not found", reason="SCHEDULE_NOT_FOUND")
        return stored

    async def get(self, name: str) -> schedule_pb2.Schedule:
        return (await self.visible(name)).to_proto()

    async def list(self, *, page_size: int, page_token: str) -> SchedulePage:
        """By name; only schedules the caller's tenant may see."""
        size = check_page_size(page_size)
        if page_token:
            check_schedule_name(page_token, "page_token")
        low = f"({page_token}" if page_token else "-"
        caller = principal.current()
        found: list[schedule_pb2.Schedule] = []
        last = ""
        while len(found) < size:
            raw = await self.redis.zrangebylex(self.keys.schedules_index, low, "+", 0, size)
            names = [n.decode() for n in cast(list[bytes], raw)]
            if not names:
                last = ""
                break
            async with self.redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hmget(self.keys.schedule(name), FIELDS)
                rows = await pipe.execute()
            for name, row in zip(names, rows, strict=True):
                last = name
                stored = from_values(name, row)
                if stored is not None and caller.sees(stored.tenant):
                    found.append(stored.to_proto())
                    if len(found) == size:
                        break
            if len(names) < size and len(found) < size:
                last = ""
                break
            low = f"({last}"
        return SchedulePage(found, last if len(found) == size else "")

    async def _apply(self, name: str, op: str, next_ms: int = 0) -> int:
        return int(
            await self._control(
                keys=[
                    self.keys.schedule(name),
                    self.keys.schedules_due,
                    self.keys.events,
                    self.keys.schedules_index,
                ],
                args=[now_ms(), self.settings.events_maxlen, name, op, next_ms],
            )
        )

    async def pause(self, name: str) -> schedule_pb2.Schedule:
        await self.visible(name)
        await self._apply(name, "pause")
        return await self.get(name)

    async def resume(self, name: str) -> schedule_pb2.Schedule:
        """Resume on the grid: the ticks missed while paused are not fired."""
        stored = await self.visible(name)
        spec = check_spec(stored.definition.spec)
        await self._apply(name, "resume", next_tick(spec, stored.anchor_ms, now_ms()))
        self._on_change()
        return await self.get(name)

    async def delete(self, name: str) -> None:
        await self.visible(name)
        if not await self._apply(name, "delete"):
            raise NotFound(f"schedule {name!r} not found", reason="SCHEDULE_NOT_FOUND")


def _checked_target(
    target: schedule_pb2.ScheduleTarget, settings: CoordinatorSettings
) -> schedule_pb2.ScheduleTarget:
    """The target checked as its submission would be; request_id cleared (set per fire)."""
    kind = target.WhichOneof("kind")
    out = schedule_pb2.ScheduleTarget()
    out.CopyFrom(target)
    if kind == "task":
        out.task.request_id = ""
        validate_task(out.task, settings, "schedule.target.task.")
    elif kind == "workflow":
        out.workflow.request_id = ""
        validate_workflow(out.workflow, settings)
    elif kind == "command":
        raise InvalidArgument(
            "a command target is expanded by the gateway; send the workflow",
            field="schedule.target.command",
        )
    else:
        raise InvalidArgument("a schedule needs a task or a workflow", field="schedule.target")
    return out
