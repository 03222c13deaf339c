"""The gateway's dashboard streams: StreamEvents (snapshot, live, heartbeats) and WatchStats."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import duration_pb2

from hivewire.v1 import (
    coordinator_pb2,
    coordinator_pb2_grpc,
    event_pb2,
    stats_pb2,
    workflow_pb2,
)
from hivewire_services.common.clock import now_ms, ts_from_ms
from hivewire_services.common.config import Settings
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.keys import Keys
from hivewire_services.gateway import checks
from hivewire_services.gateway.events.hub import EventsHub, format_stream_id
from hivewire_services.gateway.events.snapshot import snapshot_events
from hivewire_services.gateway.stats.collector import StatsCollector
from hivewire_services.gateway.stats.counters import SLOT_SECONDS
from hivewire_services.gateway.stats.state_reader import StateReader

logger = logging.getLogger(__name__)

DEFAULT_HEARTBEAT = 15.0
DEFAULT_STATS_INTERVAL = 1.0
MAX_BATCH = 1000


def _seconds(
    value: duration_pb2.Duration, name: str, default: float, low: float, high: float
) -> float:
    """A Duration field in seconds, `default` when unset; InvalidArgument outside low..high."""
    if value.seconds == 0 and value.nanos == 0:
        return default
    seconds = value.ToNanoseconds() / 1e9
    if not low <= seconds <= high:
        raise InvalidArgument(f"{name} must be between {low:g}s and {high:g}s", field=name)
    return seconds


class StreamRpcs:
    """Mixin for GatewayServicer; uses its `_settings`, `_hub` and `_stats`."""

    _settings: Settings
    _hub: EventsHub
    _stats: StatsCollector

    async def StreamEvents(
        self, request: event_pb2.StreamEventsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[event_pb2.StreamEventsResponse]:
        """Optional snapshot, then events after the cursor, with heartbeats on idle streams.

        Headers are sent once the subscription is in place, so a client that has them
        misses no later event.
        """
        flt, since = checks.event_subscription(request)
        idle = _seconds(
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
                reader = StateReader(hub.redis, Keys(self._settings.namespace))
                limit = self._settings.snapshot_max_tasks
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
        self, request: stats_pb2.WatchStatsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[stats_pb2.WatchStatsResponse]:
        """A Stats snapshot now and then every interval, until the client goes away."""
        interval = _seconds(request.interval, "interval", DEFAULT_STATS_INTERVAL, 0.1, 60.0)
        counters = self._stats.counters
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
            stats = await self._stats.snapshot(window, end)
            yield stats_pb2.WatchStatsResponse(stats=stats)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at, time.monotonic() - interval)


def stats_for(
    hub: EventsHub,
    settings: Settings,
    coordinator: coordinator_pb2_grpc.CoordinatorServiceAsyncStub,
) -> StatsCollector:
    """A collector fed by `hub` that counts workflows through `coordinator`."""
    stats = StatsCollector(
        hub.redis,
        Keys(settings.namespace),
        lambda: hub.subscriber_count,
        WorkflowCount(coordinator, settings.rpc_timeout),
    )
    hub.add_listener(stats.counters.observe)
    return stats


class WorkflowCount:
    """Workflows RUNNING, counted through the coordinator's ListWorkflows (cached a while).

    Answers 0 while the coordinator does not implement workflows (UNIMPLEMENTED) or fails.
    """

    def __init__(
        self,
        coordinator: coordinator_pb2_grpc.CoordinatorServiceAsyncStub,
        timeout: float,
        ttl: float = 2.0,
        max_pages: int = 10,
    ) -> None:
        self._coordinator = coordinator
        self._timeout = timeout
        self._ttl = ttl
        self._max_pages = max_pages
        self._value = 0
        self._at = float("-inf")
        self._last_error: grpc.StatusCode | None = None

    async def __call__(self) -> int:
        if time.monotonic() - self._at < self._ttl:
            return self._value
        self._at = time.monotonic()
        count, token = 0, ""
        try:
            for _ in range(self._max_pages):
                reply: coordinator_pb2.CoordinatorServiceListWorkflowsResponse = (
                    await self._coordinator.ListWorkflows(
                        coordinator_pb2.CoordinatorServiceListWorkflowsRequest(
                            request=workflow_pb2.ListWorkflowsRequest(
                                page_size=1000,
                                page_token=token,
                                state=workflow_pb2.WORKFLOW_STATE_RUNNING,
                            )
                        ),
                        timeout=self._timeout,
                    )
                )
                count += len(reply.response.workflows)
                token = reply.response.next_page_token
                if not token:
                    break
        except grpc.aio.AioRpcError as exc:
            if exc.code() != self._last_error:  # log a change, not every failed poll
                logger.info("stats: workflows not counted (ListWorkflows %s)", exc.code().name)
            self._last_error = exc.code()
            return self._value
        self._last_error = None
        self._value = count
        return count
