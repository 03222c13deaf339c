"""The GatewayService servicer: check at the edge, forward to the coordinator/registry, stream."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

from hivewire.core.clock import now_ms, ts_from_ms
from hivewire.v1 import (
    command_pb2,
    coordinator_pb2,
    coordinator_pb2_grpc,
    event_pb2,
    gateway_pb2_grpc,
    registry_pb2_grpc,
    schedule_pb2,
    stats_pb2,
    task_pb2,
)
from hivewire_services.common import tenancy
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.keys import Keys
from hivewire_services.common.workflow_spec import validate_workflow
from hivewire_services.gateway import checks, schedules
from hivewire_services.gateway.commands import CommandCatalog, commands_dir
from hivewire_services.gateway.config import GatewaySettings
from hivewire_services.gateway.events.hub import EventsHub, format_stream_id
from hivewire_services.gateway.events.snapshot import snapshot_events
from hivewire_services.gateway.output import OutputReader
from hivewire_services.gateway.stats.counters import SLOT_SECONDS
from hivewire_services.gateway.stats.state_reader import StateReader
from hivewire_services.gateway.submits import CoalescedSubmit, gateway_submits
from hivewire_services.gateway.upstream import REGISTRY, Direct, Forward, forward
from hivewire_services.gateway.workflow_count import stats_for

logger = logging.getLogger(__name__)

# grpc ships no type hints, so its context type is Any to mypy.
Context: TypeAlias = Any

DEFAULT_HEARTBEAT = 15.0
DEFAULT_STATS_INTERVAL = 1.0
MAX_BATCH = 1000


class GatewayServicer(gateway_pb2_grpc.GatewayServiceServicer):
    """Thin: every request is checked here, then forwarded with a deadline or served from the hub.

    Errors from the coordinator or registry propagate as AioRpcError; the error interceptor passes
    their code and rich details through unchanged.
    """

    def __init__(
        self,
        settings: GatewaySettings,
        coordinator: coordinator_pb2_grpc.CoordinatorServiceAsyncStub,
        registry: registry_pb2_grpc.RegistryServiceAsyncStub,
        hub: EventsHub,
        output: OutputReader,
        direct: Direct | None = None,
    ) -> None:
        self.settings = settings
        self.coordinator = coordinator
        self.registry = registry
        self.direct = direct
        self.timeout = settings.rpc_timeout
        self._hub = hub
        self._output = output
        self._stats = stats_for(hub, settings, coordinator)
        self.submits = gateway_submits(self, type(self).SubmitTask, type(self).SubmitTasks)

    # Checked, then forwarded to the upstream RPC of the same name.
    SubmitTask = CoalescedSubmit()
    SubmitTasks = Forward(checks.submit_tasks)
    GetTask = Forward(checks.task_id)
    ListTasks = Forward(checks.list_tasks)
    CancelTask = Forward(checks.task_id)
    ListAgents = Forward(checks.list_agents, REGISTRY)
    ListDeadLetters = Forward(checks.list_dead_letters)
    RetryDeadLetter = Forward(checks.retry_dead_letter)
    SubmitWorkflow = Forward(checks.submit_workflow)
    GetWorkflow = Forward(checks.workflow_id)
    ListWorkflows = Forward(checks.list_workflows)
    CancelWorkflow = Forward(checks.workflow_id)
    PauseQueue = Forward(checks.queue_capability)
    ResumeQueue = Forward(checks.queue_capability)
    ListQueues = Forward(checks.nothing)
    DrainAgent = Forward(checks.drain_agent, REGISTRY)
    SignalWorkflow = Forward(checks.signal_workflow)
    RetryWorkflow = Forward(checks.workflow_id)
    GetSchedule = Forward(schedules.schedule_name)
    ListSchedules = Forward(schedules.list_schedules)
    PauseSchedule = Forward(schedules.schedule_name)
    ResumeSchedule = Forward(schedules.schedule_name)
    TriggerSchedule = Forward(schedules.schedule_name)
    DeleteSchedule = Forward(schedules.schedule_name)

    async def CreateSchedule(
        self, request: schedule_pb2.CreateScheduleRequest, context: Context
    ) -> schedule_pb2.CreateScheduleResponse:
        """Checked, a command target expanded into its workflow, then forwarded."""
        envelope = coordinator_pb2.CoordinatorServiceCreateScheduleRequest(
            request=schedules.expand(request, self.settings)
        )
        return await forward(self.coordinator.CreateSchedule, envelope, self.timeout)

    SetRateLimit = Forward(checks.set_rate_limit)
    ListRateLimits = Forward(checks.nothing)
    DeleteRateLimit = Forward(checks.delete_rate_limit)

    async def StreamTaskOutput(
        self, request: task_pb2.StreamTaskOutputRequest, context: Context
    ) -> AsyncIterator[task_pb2.StreamTaskOutputResponse]:
        """The task's output after the cursor; with follow, new output until the task ends."""
        after = checks.task_output(request)
        async for chunks in self._output.read(request.task_id, after, request.follow):
            yield task_pb2.StreamTaskOutputResponse(chunks=chunks)

    async def ListCommands(
        self, request: command_pb2.ListCommandsRequest, context: Context
    ) -> command_pb2.ListCommandsResponse:
        catalog = CommandCatalog(commands_dir(self.settings.commands_dir))
        return command_pb2.ListCommandsResponse(commands=catalog.list())

    async def RunCommand(
        self, request: command_pb2.RunCommandRequest, context: Context
    ) -> command_pb2.RunCommandResponse:
        checks.run_command(request, self.settings)
        catalog = CommandCatalog(commands_dir(self.settings.commands_dir))
        workflow_request = catalog.render(
            request.name, dict(request.params), request.request_id, self.settings.max_payload_bytes
        )
        validate_workflow(workflow_request, self.settings)
        # Forwarded past SubmitWorkflow's edge check, which refuses `command` from clients.
        reply = await GatewayServicer.SubmitWorkflow.send(self, workflow_request)
        return command_pb2.RunCommandResponse(workflow=reply.workflow)

    async def StreamEvents(
        self, request: event_pb2.StreamEventsRequest, context: Context
    ) -> AsyncIterator[event_pb2.StreamEventsResponse]:
        """Optional snapshot, then events after the cursor, with heartbeats on idle streams.

        Headers are sent once the subscription is in place, so a client that has them
        misses no later event.
        """
        flt, since = checks.event_subscription(request)
        idle = checks.duration_seconds(
            request.heartbeat_interval, "heartbeat_interval", DEFAULT_HEARTBEAT, 1.0, 3600.0
        )
        if not 0 <= request.max_batch <= MAX_BATCH:
            raise InvalidArgument(f"max_batch must be 0..{MAX_BATCH}", field="max_batch")
        batch_limit = max(1, request.max_batch)
        hub = self._hub
        snapshot_cursor = ""
        if request.include_snapshot and since is None:
            await hub.ready()
            # The live part resumes after the stream position read before the state, so a
            # change racing the snapshot shows up (again) as an event: nothing is missed.
            since = hub.position or (0, 0)
            snapshot_cursor = format_stream_id(since)
        sub = hub.subscribe(flt, since)
        try:
            await sub.open()
            await context.send_initial_metadata(())
            if request.include_snapshot:
                if since is not None and not snapshot_cursor:
                    snapshot_cursor = request.since_cursor
                reader = StateReader(hub.redis, Keys(self.settings.namespace))
                limit = self.settings.snapshot_max_tasks
                async for event in snapshot_events(reader, flt, limit):
                    yield event_pb2.StreamEventsResponse(event=event)
                yield event_pb2.StreamEventsResponse(
                    snapshot_complete=event_pb2.SnapshotComplete(cursor=snapshot_cursor)
                )
            async for batch in sub.batches(idle, batch_limit):
                if batch is not None:
                    if len(batch) == 1:
                        yield event_pb2.StreamEventsResponse(event=batch[0])
                    else:
                        frame = event_pb2.StreamEventsResponse()
                        frame.events.events.extend(batch)
                        yield frame
                    continue
                beat = event_pb2.StreamHeartbeat(cursor=sub.last_delivered)
                beat.time.CopyFrom(ts_from_ms(now_ms()))
                yield event_pb2.StreamEventsResponse(heartbeat=beat)
        finally:
            sub.close()

    async def WatchStats(
        self, request: stats_pb2.WatchStatsRequest, context: Context
    ) -> AsyncIterator[stats_pb2.WatchStatsResponse]:
        """A Stats snapshot now and then every interval, until the client goes away."""
        interval = checks.duration_seconds(
            request.interval, "interval", DEFAULT_STATS_INTERVAL, 0.1, 60.0
        )
        counters = self._stats.counters
        only = tenancy.scope()  # a client or viewer watches its tenant's stats
        per_frame = max(1, round(interval / SLOT_SECONDS))
        covered = counters.current_slot() - per_frame  # the first frame covers one interval
        next_at = time.monotonic()
        while True:
            # Each frame's rates cover exactly the whole slots since the previous frame's, so
            # no burst falls between two frames, whatever the gateway's load (a late frame
            # covers more slots, a catch-up frame waits for one to complete).
            end = counters.current_slot()
            if end <= covered:
                await asyncio.sleep((covered + 1) * SLOT_SECONDS - time.monotonic() + 0.001)
                end = max(covered + 1, counters.current_slot())
            window = min(60.0, (end - covered) * SLOT_SECONDS)
            covered = end
            stats = await self._stats.snapshot(window, end, only)
            yield stats_pb2.WatchStatsResponse(stats=stats)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at, time.monotonic() - interval)
