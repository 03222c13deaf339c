"""The dashboard's connections to the gateway: four loops that each reconnect on their own.

Events come from StreamEvents (resumed from the last cursor after any disconnect), totals and
queues from WatchStats, agents from ListAgents and workflows from ListWorkflows, polled. A
gateway that does not offer workflows (UNIMPLEMENTED) leaves that panel empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from hivewire.client import Client, EventStream
from hivewire.core.backoff import backoff
from hivewire.dashboard.model import DashboardModel
from hivewire.v1 import event_pb2, workflow_pb2

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
WORKFLOW_PAGE = 200
MAX_DETAILED = 20  # running workflows listed without steps get a GetWorkflow each, up to this
_WORKFLOW_EVENTS = frozenset(
    {
        event_pb2.EVENT_TYPE_WORKFLOW_SUBMITTED,
        event_pb2.EVENT_TYPE_WORKFLOW_SUCCEEDED,
        event_pb2.EVENT_TYPE_WORKFLOW_FAILED,
        event_pb2.EVENT_TYPE_WORKFLOW_CANCELLED,
    }
)


class Feed:
    """Runs the loops against `client` and calls `changed()` after each update of `model`."""

    def __init__(
        self,
        client: Client,
        model: DashboardModel,
        changed: Callable[[], None],
        *,
        stats_interval: float = 1.0,
        request: event_pb2.StreamEventsRequest | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.changed = changed
        self.stats_interval = stats_interval
        self.request = request or event_pb2.StreamEventsRequest()
        self.events: EventStream | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._workflows_changed = asyncio.Event()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._forever("events", self._events)),
            asyncio.create_task(self._forever("stats", self._stats)),
            asyncio.create_task(self._forever("agents", self._agents)),
            asyncio.create_task(self._forever("workflows", self._workflows)),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _forever(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run `loop` again after any gRPC error, with capped backoff (the gateway may restart)."""
        delays = backoff(0.1, 3.0)
        while True:
            try:
                await loop()
                delays = backoff(0.1, 3.0)
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                logger.debug("dashboard %s: %s", name, exc.code().name)
                self._disconnected()
            except Exception:
                logger.exception("dashboard %s failed", name)
                self._disconnected()
            await asyncio.sleep(next(delays))

    def _disconnected(self, _error: Any = None) -> None:
        if self.model.connected:
            self.model.connected = False
            self.changed()

    def _connected(self) -> None:
        if not self.model.connected:
            self.model.connected = True
            self.changed()

    async def _events(self) -> None:
        if self.events is None:
            request = event_pb2.StreamEventsRequest()
            request.CopyFrom(self.request)
            request.heartbeat_interval.FromSeconds(5)
            self.events = EventStream(
                self.client._stub, request, on_disconnect=self._on_events_disconnect
            )
        async for frame in self.events:
            self._connected()
            if frame.WhichOneof("frame") == "event":
                self.model.on_event(frame.event)
                if frame.event.type in _WORKFLOW_EVENTS or frame.event.workflow_id:
                    self._workflows_changed.set()  # refresh the workflows panel now
                self.changed()

    def _on_events_disconnect(self, error: Any) -> None:
        self.model.reconnects += 1
        self._disconnected(error)

    async def _stats(self) -> None:
        async for stats in self.client.watch_stats(self.stats_interval):
            self._connected()
            self.model.on_stats(stats)
            self.changed()

    async def _agents(self) -> None:
        while True:
            # Live agents first, then those offline within the registry's retention (it deletes
            # older ones), so a panel full of dead agents never hides a live one.
            agents = self.client.iter_agents(page_size=1000, include_offline=True)
            self.model.agents = [a async for a in agents]
            self._connected()
            self.changed()
            await asyncio.sleep(POLL_SECONDS)

    async def _workflows(self) -> None:
        while True:
            self._workflows_changed.clear()
            try:
                workflows = await self._running_workflows()
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE:
                    raise
                # Not offered by this gateway (UNIMPLEMENTED) or failing: an empty panel.
                self.model.workflows, self.model.workflows_available = [], False
                self.changed()
                await asyncio.sleep(POLL_SECONDS * 5)
                continue
            self.model.workflows = workflows
            self.model.workflows_available = True
            self.changed()
            # Poll every 2 s, sooner when a workflow event arrives (at most 4 times a second).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._workflows_changed.wait(), POLL_SECONDS * 2)
            await asyncio.sleep(0.25)

    async def _running_workflows(self) -> list[workflow_pb2.Workflow]:
        stub = self.client._stub
        reply = await stub.ListWorkflows(
            workflow_pb2.ListWorkflowsRequest(
                page_size=WORKFLOW_PAGE, state=workflow_pb2.WORKFLOW_STATE_RUNNING
            ),
            timeout=self.client.timeout,
        )
        workflows = list(reply.workflows)
        for i, wf in enumerate(workflows[:MAX_DETAILED]):
            if not wf.steps:  # a list that leaves steps out: fetch them for the progress bar
                full = await stub.GetWorkflow(
                    workflow_pb2.GetWorkflowRequest(workflow_id=wf.workflow_id),
                    timeout=self.client.timeout,
                )
                workflows[i] = full.workflow
        return workflows
