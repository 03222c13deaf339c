"""The schedule loop: fires due schedules, each tick once, whichever coordinators run.

Every coordinator runs one loop. It sleeps on an Alarm until the earliest due time in the
`schedules-due` sorted set (woken early when a schedule is created or resumed here), then
handles each due schedule: it creates the run (task or workflow) with a request_id derived
from the schedule and the tick, then applies the fire with fire.lua, which checks that the
stored next fire time is still the tick it claimed. Two coordinators firing the same tick
create the same run (the request_id) and only one fire applies; a coordinator killed between
the two steps leaves the tick due, and the next pass (its own after a restart, or another
coordinator's) finds the run it created and applies the fire. So each tick starts one run.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from pathlib import Path
from typing import cast

from hivewire.core.clock import now_ms
from hivewire.v1 import schedule_pb2, workflow_pb2
from hivewire_services.common import lua, principal
from hivewire_services.common.alarm import Alarm, due_ms
from hivewire_services.common.errors import FailedPrecondition, NotFound
from hivewire_services.common.loops import Backoff
from hivewire_services.common.redis import REDIS_UNAVAILABLE
from hivewire_services.common.submission import validate_task
from hivewire_services.common.workflow_spec import validate_workflow
from hivewire_services.coordinator.schedules.model import StoredSchedule
from hivewire_services.coordinator.schedules.spec import check_spec, next_tick
from hivewire_services.coordinator.schedules.store import ScheduleStore
from hivewire_services.coordinator.tasks.model import TERMINAL_STATES
from hivewire_services.coordinator.tasks.store import TaskStore
from hivewire_services.coordinator.workflows.engine import WorkflowEngine

logger = logging.getLogger(__name__)

_HERE = Path(__file__).parent
BATCH = 100
"""Due schedules handled per pass (the pass repeats at once while more are due)."""
MIN_PAUSE_MS = 50


class ScheduleFiring:
    """Fires schedules (the loop, and TriggerSchedule)."""

    def __init__(self, store: ScheduleStore, tasks: TaskStore, workflows: WorkflowEngine) -> None:
        self.store = store
        self.redis = store.redis
        self.keys = store.keys
        self.settings = store.settings
        self.tasks = tasks
        self.workflows = workflows
        self.alarm = Alarm(store.settings.schedule_interval)
        self._fire = lua.register(self.redis, _HERE / "fire.lua")
        self.fired = 0

    def wake(self) -> None:
        """A schedule was created or resumed: look at the due set now."""
        self.alarm.now()

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            await self.alarm.wait()
            try:
                self.alarm.at(await self.fire_due())
                backoff.reset()
            except Exception as exc:
                await backoff.failed("schedules", exc)
                self.alarm.now()

    async def fire_due(self) -> int | None:
        """Handle every due schedule; the next due time (epoch ms), None when none waits."""
        while True:
            raw = await self.redis.zrangebyscore(
                self.keys.schedules_due, "-inf", now_ms(), start=0, num=BATCH
            )
            names = [n.decode() for n in cast(list[bytes], raw)]
            for name in names:
                try:
                    await self.fire_one(name)
                except REDIS_UNAVAILABLE:
                    raise
                except Exception:
                    # A schedule that cannot fire (its target no longer passes the limits)
                    # must not stop the others: it is looked at again after the recheck.
                    logger.exception("schedule %s could not fire", name)
                    await self.redis.zadd(
                        self.keys.schedules_due,
                        {name: now_ms() + int(self.settings.schedule_recheck * 1000)},
                        xx=True,
                    )
            if len(names) < BATCH:
                break
        head = await self.redis.zrange(self.keys.schedules_due, 0, 0, withscores=True)
        due = due_ms(head[0][1]) if head else None
        # A schedule still due after its pass (it could not be decided yet) is looked at again
        # shortly, never in a spin.
        return None if due is None else max(due, now_ms() + MIN_PAUSE_MS)

    async def fire_one(self, name: str) -> str:
        """Apply what is due for one schedule; fire.lua's answer."""
        result = "stale"
        for _ in range(3):  # 'stale': a run's state moved under us; decide again
            stored = await self.store.load(name)
            if stored is None:
                await self.redis.zrem(self.keys.schedules_due, name)
                return "gone"
            result = await self._decide(stored)
            if result != "stale":
                break
        return result

    async def _decide(self, s: StoredSchedule) -> str:
        if s.paused:
            return "paused"
        now = now_ms()
        if s.next_ms and s.next_ms <= now:
            tick = s.next_ms
            # Catch-up: one fire for every tick missed, then the grid after now.
            after = next_tick(check_spec(s.definition.spec), s.anchor_ms, max(now, tick))
            overlap = s.overlap or schedule_pb2.OVERLAP_POLICY_SKIP
            if overlap != schedule_pb2.OVERLAP_POLICY_ALLOW_ALL and await self._active(s):
                return await self._apply(s, "skip", tick, after)
            run_id, kind = await self._start(s, f"schedule:{s.name}:{tick}")
            result = await self._apply(s, "run", tick, after, run_id, kind)
            if result == "lost":
                await self._orphaned(s.name, tick, run_id, kind)
            return result
        if s.buffered_ms:
            if await self._active(s):
                return await self._apply(s, "wait")
            key = f"schedule:{s.name}:buffer:{s.buffered_ms}"
            run_id, kind = await self._start(s, key)
            return await self._apply(s, "buffer", s.buffered_ms, 0, run_id, kind)
        await self._apply(s, "wait")  # a due entry ahead of the stored time: put it back
        return "waiting"

    async def trigger(self, name: str) -> schedule_pb2.Schedule:
        """Fire now, outside the grid and whatever the overlap policy (also while paused)."""
        s = await self.store.visible(name)
        run_id, kind = await self._start(s, f"schedule:{name}:trigger:{uuid.uuid4().hex}")
        if await self._apply(s, "trigger", now_ms(), 0, run_id, kind) == "gone":
            raise NotFound(f"schedule {name!r} not found", reason="SCHEDULE_NOT_FOUND")
        return await self.store.get(name)

    async def _apply(
        self, s: StoredSchedule, mode: str, tick: int = 0, after: int = 0, run_id: str = "",
        kind: str = "",
    ) -> str:  # fmt: skip
        raw = await self._fire(
            keys=[self.keys.schedule(s.name), self.keys.schedules_due, self.keys.events],
            args=[self.keys.prefix, now_ms(), self.settings.events_maxlen, s.name, mode, tick,
                  after, run_id, kind, int(self.settings.schedule_recheck * 1000)],
        )  # fmt: skip
        result = raw.decode() if isinstance(raw, bytes) else str(raw)
        if result == "fired":
            self.fired += 1
        return result

    async def _active(self, s: StoredSchedule) -> bool:
        """Whether the schedule's last run is still running (fire.lua checks again)."""
        if not s.last_run:
            return False
        if s.last_kind == "workflow":
            state = await self.redis.hget(self.keys.workflow(s.last_run), "state")
            return state is not None and int(state) == workflow_pb2.WORKFLOW_STATE_RUNNING
        state = await self.redis.hget(self.keys.task(s.last_run), "state")
        return state is not None and int(state) not in TERMINAL_STATES

    async def _start(self, s: StoredSchedule, request_id: str) -> tuple[str, str]:
        """Create the run as the schedule's tenant; (its id, 'task' | 'workflow'). The same
        request_id yields the same run."""
        owner = principal.Principal(
            name=f"schedule:{s.name}", role="client", tenant=s.tenant or principal.DEFAULT_TENANT
        )
        target = s.definition.target
        with principal.acting_as(owner):
            if target.WhichOneof("kind") == "workflow":
                wf_request = workflow_pb2.SubmitWorkflowRequest()
                wf_request.CopyFrom(target.workflow)
                wf_request.request_id = request_id
                workflow = await self.workflows.submit(validate_workflow(wf_request, self.settings))
                return workflow.workflow_id, "workflow"
            task_request = type(target.task)()
            task_request.CopyFrom(target.task)
            task_request.request_id = request_id
            [task] = await self.tasks.submit([validate_task(task_request, self.settings)])
            return task.task_id, "task"

    async def _orphaned(self, name: str, tick: int, run_id: str, kind: str) -> None:
        """Another coordinator skipped this tick (it saw the previous run active) while this
        one created a run for it: cancel that run, so the tick starts nothing."""
        skipped_tick = await self.redis.hget(self.keys.schedule(name), "skip_tick")
        if skipped_tick is None or int(skipped_tick) != tick:
            return
        logger.info("schedule %s: tick %d was skipped elsewhere; cancelling %s", name, tick, run_id)
        with contextlib.suppress(NotFound, FailedPrecondition):
            if kind == "workflow":
                await self.workflows.cancel(run_id)
            else:
                await self.tasks.cancel(run_id)
