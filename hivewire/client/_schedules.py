"""Recurring schedule calls of the client SDK (mixed into hivewire.client.Client)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from hivewire.client._calls import GatewayCalls
from hivewire.client._loops import every_item
from hivewire.core.convert import encode_payload, enum_name, iso_time
from hivewire.v1 import command_pb2, schedule_pb2, task_pb2, workflow_pb2

OVERLAPS = {
    "skip": schedule_pb2.OVERLAP_POLICY_SKIP,
    "buffer-one": schedule_pb2.OVERLAP_POLICY_BUFFER_ONE,
    "allow-all": schedule_pb2.OVERLAP_POLICY_ALLOW_ALL,
}
"""Overlap policy names (as the CLI spells them) -> OverlapPolicy."""


def schedule_to_dict(s: schedule_pb2.Schedule) -> dict[str, Any]:
    """A schedule as a JSON-ready dict."""
    spec: dict[str, Any]
    if s.spec.WhichOneof("kind") == "interval":
        spec = {"every_seconds": s.spec.interval.ToMilliseconds() / 1000}
    else:
        spec = {"cron": s.spec.cron, "time_zone": s.spec.time_zone or "UTC"}
    target: dict[str, Any]
    if s.target.WhichOneof("kind") == "workflow":
        wf = s.target.workflow
        target = {"workflow": wf.name, "command": wf.command, "steps": len(wf.steps)}
    else:
        target = {"capability": s.target.task.capability}
    overlap = enum_name(schedule_pb2.OverlapPolicy, s.overlap, "OVERLAP_POLICY_")
    return {
        "name": s.name,
        **spec,
        "target": target,
        "overlap": overlap.lower().replace("_", "-"),
        "paused": s.paused,
        "buffered": s.buffered,
        "next_fire_time": iso_time(s, "next_fire_time"),
        "last_fire_time": iso_time(s, "last_fire_time"),
        "last_run_id": s.last_run_id,
        "fired_count": s.fired_count,
        "skipped_count": s.skipped_count,
        "tenant": s.tenant,
        "create_time": iso_time(s, "create_time"),
    }


def schedule_spec(
    every: float | None = None, cron: str = "", time_zone: str = ""
) -> schedule_pb2.ScheduleSpec:
    """A spec: every `every` seconds, or a cron expression read in `time_zone` (default UTC)."""
    if (every is None) == (not cron):
        raise ValueError("give exactly one of every (seconds) and cron")
    spec = schedule_pb2.ScheduleSpec(time_zone=time_zone)
    if every is not None:
        spec.interval.FromNanoseconds(int(every * 1e9))
    else:
        spec.cron = cron
    return spec


class ScheduleCalls(GatewayCalls):
    """Schedule calls of the Client."""

    async def create_schedule(
        self,
        name: str,
        *,
        every: float | None = None,
        cron: str = "",
        time_zone: str = "",
        capability: str = "",
        payload: object = None,
        priority: int = 0,
        max_attempts: int = 0,
        required_labels: Mapping[str, str] | None = None,
        workflow: workflow_pb2.SubmitWorkflowRequest | None = None,
        command: str = "",
        params: Mapping[str, str] | None = None,
        overlap: str = "skip",
    ) -> schedule_pb2.Schedule:
        """Create a schedule that starts a task (`capability`, `payload`, ...), a workflow, or a
        custom command (`command`, `params`) every `every` seconds or on `cron`.

        `overlap`: skip (no fire while the previous run is active), buffer-one (fire once when
        it ends) or allow-all.
        """
        if overlap not in OVERLAPS:
            raise ValueError(f"overlap must be one of {', '.join(OVERLAPS)}")
        target = schedule_pb2.ScheduleTarget()
        if command:
            target.command.CopyFrom(command_pb2.RunCommandRequest(name=command, params=params))
        elif workflow is not None:
            target.workflow.CopyFrom(workflow)
        else:
            target.task.CopyFrom(
                task_pb2.SubmitTaskRequest(
                    capability=capability,
                    payload=encode_payload(payload),
                    priority=priority,
                    max_attempts=max_attempts,
                    required_labels=required_labels,
                )
            )
        schedule = schedule_pb2.Schedule(
            name=name,
            spec=schedule_spec(every, cron, time_zone),
            target=target,
            overlap=OVERLAPS[overlap],
        )
        resp = await self._stub.CreateSchedule(
            schedule_pb2.CreateScheduleRequest(schedule=schedule), timeout=self.timeout
        )
        return resp.schedule  # type: ignore[no-any-return]

    async def get_schedule(self, name: str) -> schedule_pb2.Schedule:
        return await self._schedule_call(
            self._stub.GetSchedule, schedule_pb2.GetScheduleRequest(name=name)
        )

    async def list_schedules(
        self, page_size: int = 100, page_token: str = ""
    ) -> tuple[list[schedule_pb2.Schedule], str]:
        """One page of schedules by name, and the next page token ('' on the last)."""
        resp = await self._stub.ListSchedules(
            schedule_pb2.ListSchedulesRequest(page_size=page_size, page_token=page_token),
            timeout=self.timeout,
        )
        return list(resp.schedules), str(resp.next_page_token)

    def iter_schedules(self, page_size: int = 100) -> AsyncIterator[schedule_pb2.Schedule]:
        return every_item(lambda token: self.list_schedules(page_size, token))

    async def pause_schedule(self, name: str) -> schedule_pb2.Schedule:
        return await self._schedule_call(
            self._stub.PauseSchedule, schedule_pb2.PauseScheduleRequest(name=name)
        )

    async def resume_schedule(self, name: str) -> schedule_pb2.Schedule:
        return await self._schedule_call(
            self._stub.ResumeSchedule, schedule_pb2.ResumeScheduleRequest(name=name)
        )

    async def trigger_schedule(self, name: str) -> schedule_pb2.Schedule:
        """Fire now (also while paused); the schedule's last_run_id names what it started."""
        return await self._schedule_call(
            self._stub.TriggerSchedule, schedule_pb2.TriggerScheduleRequest(name=name)
        )

    async def delete_schedule(self, name: str) -> None:
        await self._stub.DeleteSchedule(
            schedule_pb2.DeleteScheduleRequest(name=name), timeout=self.timeout
        )

    async def _schedule_call(self, method: Any, request: Any) -> schedule_pb2.Schedule:
        resp = await method(request, timeout=self.timeout)
        return resp.schedule  # type: ignore[no-any-return]
