"""Client SDK for the gateway: submit tasks, wait for them, list, cancel, and stream events.

async with Client() as client:
    task = await client.submit_and_wait("echo", {"hello": "world"})
    print(task_to_dict(task)["result"])
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from hivewire.client._direct import DirectCalls
from hivewire.client._dlq import DeadLetterMethods
from hivewire.client._events import EventStream
from hivewire.client._flow import RateLimitMethods
from hivewire.client._loops import every_item, poll_state
from hivewire.client._operator import OperatorMethods
from hivewire.client._output import OutputMethods
from hivewire.client._schedules import ScheduleCalls
from hivewire.client._tokens import TokenMethods
from hivewire.client._workflow import WorkflowCalls, workflow_to_dict
from hivewire.core.backoff import backoff
from hivewire.core.convert import agent_to_dict, encode_payload, task_to_dict
from hivewire.core.credentials import token_from_env
from hivewire.core.defaults import DEFAULT_GATEWAY_ADDR, channel_options, client_setting
from hivewire.core.lifecycle import AsyncComponent
from hivewire.core.submits import submit_coalescer
from hivewire.core.tls import TlsConfig, aio_channel, tls_from_env
from hivewire.core.tracing import client_interceptors, new_traceparent, traceparent_of
from hivewire.v1 import (
    agent_pb2,
    event_pb2,
    gateway_pb2_grpc,
    stats_pb2,
    task_pb2,
    workflow_pb2,
)

__all__ = [
    "TERMINAL_STATES",
    "Client",
    "agent_to_dict",
    "encode_payload",
    "task_to_dict",
    "workflow_to_dict",
]

TERMINAL_STATES = frozenset(
    {
        task_pb2.TASK_STATE_SUCCEEDED,
        task_pb2.TASK_STATE_FAILED,
        task_pb2.TASK_STATE_CANCELLED,
        task_pb2.TASK_STATE_TIMED_OUT,
    }
)


def _submit_request(
    capability: str,
    payload: object,
    *,
    priority: int = 0,
    max_attempts: int = 0,
    required_labels: Mapping[str, str] | None = None,
    request_id: str = "",
    attempt_timeout: float | None = None,
    schedule_to_start_timeout: float | None = None,
    heartbeat_timeout: float | None = None,
    retry_initial_backoff: float | None = None,
    retry_max_backoff: float | None = None,
    progress_timeout: float | None = None,
    fairness_key: str = "",
    fairness_weight: int = 0,
    start_after: float | timedelta | None = None,
    start_at: datetime | None = None,
    concurrency_key: str = "",
    concurrency_limit: int = 0,
    concurrency_strategy: str | int = 0,
    rate_limit_units: Mapping[str, int] | None = None,
) -> task_pb2.SubmitTaskRequest:
    req = task_pb2.SubmitTaskRequest(
        capability=capability,
        payload=encode_payload(payload),
        priority=priority,
        max_attempts=max_attempts,
        required_labels=dict(required_labels or {}),
        request_id=request_id,
        fairness_key=fairness_key,
        fairness_weight=fairness_weight,
        concurrency_key=concurrency_key,
        concurrency_limit=concurrency_limit,
        concurrency_strategy=concurrency_strategy_value(concurrency_strategy),
        rate_limit_units=dict(rate_limit_units or {}),
    )
    if attempt_timeout is not None:
        req.attempt_timeout.FromNanoseconds(int(attempt_timeout * 1e9))
    for name, seconds in (
        ("schedule_to_start_timeout", schedule_to_start_timeout),
        ("heartbeat_timeout", heartbeat_timeout),
        ("retry_initial_backoff", retry_initial_backoff),
        ("retry_max_backoff", retry_max_backoff),
        ("progress_timeout", progress_timeout),
    ):
        if seconds is not None:
            getattr(req, name).FromNanoseconds(int(seconds * 1e9))
    set_start(req, start_after, start_at)
    return req


def set_start(
    msg: task_pb2.SubmitTaskRequest | workflow_pb2.WorkflowStepSpec,
    start_after: float | timedelta | None,
    start_at: datetime | None,
) -> None:
    """A delayed start: `start_after` seconds (or a timedelta) from now, or at `start_at` (an
    aware datetime; naive ones are refused, as their zone is a guess)."""
    if start_after is not None:
        if isinstance(start_after, timedelta):
            start_after = start_after.total_seconds()
        msg.start_after.FromNanoseconds(int(start_after * 1e9))
    if start_at is not None:
        if start_at.tzinfo is None:
            raise ValueError("start_at must be timezone-aware (e.g. datetime.now(timezone.utc))")
        msg.start_at.FromDatetime(start_at)


def concurrency_strategy_value(strategy: str | int) -> task_pb2.ConcurrencyStrategy.ValueType:
    """A ConcurrencyStrategy from its number or name ("queue", "cancel-in-progress",
    "CONCURRENCY_STRATEGY_CANCEL_NEWEST", ...); ValueError for an unknown name."""
    if isinstance(strategy, int):
        return task_pb2.ConcurrencyStrategy.ValueType(strategy)
    name = strategy.strip().upper().replace("-", "_")
    prefix = "CONCURRENCY_STRATEGY_"
    return task_pb2.ConcurrencyStrategy.Value(name if name.startswith(prefix) else prefix + name)


def _trace_metadata() -> tuple[tuple[str, str], ...]:
    """A fresh trace for a submission made outside any span, so the task gets a trace id the
    caller knows (Task.trace_id); inside a span, the interceptor propagates that span instead."""
    return () if traceparent_of() else (("traceparent", new_traceparent()),)


class Client(
    WorkflowCalls,
    ScheduleCalls,
    DeadLetterMethods,
    OutputMethods,
    OperatorMethods,
    TokenMethods,
    RateLimitMethods,
    AsyncComponent,
):
    """One channel to the gateway; every unary call has a deadline (`timeout` seconds).

    `addr` and `tls` default to HIVEWIRE_GATEWAY_ADDR and HIVEWIRE_TLS_*, else to the client
    config `hivewire up` wrote (docs/security.md); `tls=PLAINTEXT` dials plaintext. `token`
    (default HIVEWIRE_TOKEN, else the client config's) is the API token sent on every call.
    """

    def __init__(
        self,
        addr: str | None = None,
        *,
        timeout: float = 10.0,
        tls: TlsConfig | None = None,
        token: str | None = None,
    ) -> None:
        self.addr = addr or client_setting("GATEWAY_ADDR", DEFAULT_GATEWAY_ADDR)
        self.timeout = timeout
        self.tls = tls if tls is not None else tls_from_env()
        token = token_from_env(token)
        self._channel = aio_channel(
            self.addr,
            self.tls,
            options=channel_options(),
            interceptors=client_interceptors(),
            token=token,
        )
        self._stub = gateway_pb2_grpc.GatewayServiceStub(self._channel)
        self._direct = DirectCalls(self.addr, self.tls, token)
        # Submits made while one is in flight go together (hivewire/core/submits.py).
        self._submits = submit_coalescer(self._submit_one, self._submit_each)

    async def close(self) -> None:
        await self._submits.close()
        await self._channel.close()
        await self._direct.close()

    async def _exit(self) -> None:
        await self.close()

    # Tasks
    async def submit(
        self,
        capability: str,
        payload: object = None,
        *,
        priority: int = 0,
        max_attempts: int = 0,
        required_labels: Mapping[str, str] | None = None,
        request_id: str = "",
        attempt_timeout: float | None = None,
        fairness_key: str = "",
        fairness_weight: int = 0,
        start_after: float | timedelta | None = None,
        start_at: datetime | None = None,
        concurrency_key: str = "",
        concurrency_limit: int = 0,
        concurrency_strategy: str | int = 0,
        rate_limit_units: Mapping[str, int] | None = None,
        **timeouts: float | None,
    ) -> task_pb2.Task:
        """Submit one task; `payload` is sent as is when bytes, else JSON-encoded.

        Tasks of equal priority take turns across `fairness_key`s (default: your tenant),
        `fairness_weight` (1..100) turns per round (docs/flow-control.md#fairness).

        A delayed task waits in state SCHEDULED until `start_after` (seconds or a timedelta)
        from now, or until `start_at` (a timezone-aware datetime); set at most one.

        Flow control (docs/flow-control.md): at most `concurrency_limit` (default 1) tasks
        with `concurrency_key` run at once; `concurrency_strategy` is "queue" (default),
        "cancel-in-progress" or "cancel-newest". `rate_limit_units` takes units from named
        rate limits (set_rate_limit) when the task is assigned.

        `timeouts` (seconds): schedule_to_start_timeout, heartbeat_timeout,
        retry_initial_backoff, retry_max_backoff, progress_timeout (an attempt that reports no
        progress or output for this long is failed and retried).
        """
        req = _submit_request(
            capability,
            payload,
            priority=priority,
            max_attempts=max_attempts,
            required_labels=required_labels,
            request_id=request_id,
            attempt_timeout=attempt_timeout,
            fairness_key=fairness_key,
            fairness_weight=fairness_weight,
            start_after=start_after,
            start_at=start_at,
            concurrency_key=concurrency_key,
            concurrency_limit=concurrency_limit,
            concurrency_strategy=concurrency_strategy,
            rate_limit_units=rate_limit_units,
            **timeouts,
        )
        if self._direct.usable():
            # Its own trace, whichever call carries it (concurrent submits share calls).
            req.traceparent = traceparent_of() or new_traceparent()
            return await self._submits.call(req)
        resp: task_pb2.SubmitTaskResponse = await self._stub.SubmitTask(
            req, timeout=self.timeout, metadata=_trace_metadata()
        )
        return resp.task

    async def _submit_one(self, req: task_pb2.SubmitTaskRequest) -> task_pb2.Task:
        resp: task_pb2.SubmitTaskResponse = await self._direct.stub.SubmitTask(
            req, timeout=self.timeout, metadata=self._direct.metadata(req.traceparent)
        )
        return resp.task

    async def _submit_each(self, reqs: Sequence[task_pb2.SubmitTaskRequest]) -> list[task_pb2.Task]:
        """Submits that waited for one in flight, in one call (each names its own trace; the
        call's server spans join the first one's)."""
        resp: task_pb2.SubmitTasksResponse = await self._direct.stub.SubmitTasks(
            task_pb2.SubmitTasksRequest(tasks=reqs),
            timeout=self.timeout,
            metadata=self._direct.metadata(reqs[0].traceparent),
        )
        return list(resp.tasks)

    async def submit_many(
        self, tasks: Iterable[Mapping[str, Any] | task_pb2.SubmitTaskRequest]
    ) -> list[task_pb2.Task]:
        """Submit a batch atomically; each item is a SubmitTaskRequest or submit()'s kwargs."""
        reqs = [
            t if isinstance(t, task_pb2.SubmitTaskRequest) else _submit_request(**t) for t in tasks
        ]
        request = task_pb2.SubmitTasksRequest(tasks=reqs)
        resp: task_pb2.SubmitTasksResponse
        if self._direct.usable():
            resp = await self._direct.stub.SubmitTasks(
                request, timeout=self.timeout, metadata=self._direct.metadata()
            )
        else:
            resp = await self._stub.SubmitTasks(
                request, timeout=self.timeout, metadata=_trace_metadata()
            )
        return list(resp.tasks)

    async def get(self, task_id: str) -> task_pb2.Task:
        request = task_pb2.GetTaskRequest(task_id=task_id)
        return await self._task_call(self._stub.GetTask, request, idempotent=True)

    async def list_tasks(
        self,
        state: task_pb2.TaskState.ValueType | None = None,
        capability: str | None = None,
        page_size: int = 100,
        page_token: str = "",
    ) -> tuple[list[task_pb2.Task], str]:
        """One page of tasks, newest first, and the next page token ('' on the last page)."""
        req = task_pb2.ListTasksRequest(
            page_size=page_size,
            page_token=page_token,
            state=state or task_pb2.TASK_STATE_UNSPECIFIED,
            capability=capability or "",
        )
        resp = await self._read(self._stub.ListTasks, req)
        return list(resp.tasks), resp.next_page_token

    def iter_tasks(
        self,
        state: task_pb2.TaskState.ValueType | None = None,
        capability: str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[task_pb2.Task]:
        """Every task across all pages."""
        return every_item(lambda token: self.list_tasks(state, capability, page_size, token))

    async def cancel(self, task_id: str) -> task_pb2.Task:
        request = task_pb2.CancelTaskRequest(task_id=task_id)
        return await self._task_call(self._stub.CancelTask, request)

    async def wait(
        self,
        task_id: str,
        timeout: float = 60.0,  # noqa: ASYNC109 - a deadline for the whole wait, not one call
    ) -> task_pb2.Task:
        """Poll GetTask (backoff 5 ms up to 250 ms) until terminal; TimeoutError past `timeout`."""
        delays = backoff(0.005, 0.25)
        return await poll_state(
            lambda: self.get(task_id), TERMINAL_STATES, delays, timeout, f"task {task_id}"
        )

    async def submit_and_wait(
        self,
        capability: str,
        payload: object = None,
        *,
        timeout: float = 60.0,  # noqa: ASYNC109 - a deadline for the whole wait, not one call
        **kwargs: Any,
    ) -> task_pb2.Task:
        """Submit one task and return it once terminal (TimeoutError past `timeout`)."""
        task = await self.submit(capability, payload, **kwargs)
        if task.state in TERMINAL_STATES:
            return task
        return await self.wait(task.task_id, timeout)

    # Agents
    async def list_agents(
        self,
        capability: str | None = None,
        state: agent_pb2.AgentState.ValueType | None = None,
        page_size: int = 100,
        page_token: str = "",
        *,
        include_offline: bool = False,
    ) -> tuple[list[agent_pb2.Agent], str]:
        """One page: live agents first; `include_offline` adds the offline ones still stored."""
        req = agent_pb2.ListAgentsRequest(
            page_size=page_size,
            page_token=page_token,
            capability=capability or "",
            state=state or agent_pb2.AGENT_STATE_UNSPECIFIED,
            include_offline=include_offline,
        )
        resp = await self._read(self._stub.ListAgents, req)
        return list(resp.agents), resp.next_page_token

    def iter_agents(
        self,
        capability: str | None = None,
        state: agent_pb2.AgentState.ValueType | None = None,
        page_size: int = 100,
        *,
        include_offline: bool = False,
    ) -> AsyncIterator[agent_pb2.Agent]:
        return every_item(
            lambda token: self.list_agents(
                capability, state, page_size, token, include_offline=include_offline
            )
        )

    async def live_agents(
        self, capability: str, required_labels: Mapping[str, str] | None = None, *, limit: int = 1
    ) -> list[agent_pb2.Agent]:
        """Up to `limit` ONLINE agents offering `capability` (and carrying `required_labels`):
        the agents that could take a queued task of it. Empty: the task waits for one."""
        want = dict(required_labels or {})
        found: list[agent_pb2.Agent] = []
        async for agent in self.iter_agents(capability, agent_pb2.AGENT_STATE_ONLINE):
            if all(agent.labels.get(k) == v for k, v in want.items()):
                found.append(agent)
                if len(found) >= limit:
                    break
        return found

    # Events
    async def events(
        self,
        *,
        task_id: str = "",
        workflow_id: str = "",
        agent_id: str = "",
        capability: str = "",
        types: Iterable[event_pb2.EventType.ValueType] = (),
        since_cursor: str = "",
        resume: bool = True,
        schedule: str = "",
    ) -> AsyncIterator[event_pb2.Event]:
        """Events as they happen (after `since_cursor` when given); runs until cancelled.

        With `resume` (the default) a dropped stream is reopened after the last event seen,
        so no event is lost or repeated across gateway restarts and slow-subscriber cut-offs.
        """
        req = event_pb2.StreamEventsRequest(
            task_id=task_id,
            workflow_id=workflow_id,
            agent_id=agent_id,
            capability=capability,
            types=list(types),
            since_cursor=since_cursor,
            schedule=schedule,
        )
        async for frame in self.stream(req, resume=resume):
            if frame.WhichOneof("frame") == "event":
                yield frame.event

    def stream(self, request: event_pb2.StreamEventsRequest, *, resume: bool = True) -> EventStream:
        """Every frame of StreamEvents (snapshot, events, heartbeats), resumed on disconnect."""
        return EventStream(self._stub, request, resume=resume)

    async def watch_stats(self, interval: float = 1.0) -> AsyncIterator[stats_pb2.Stats]:
        """A Stats snapshot every `interval` seconds; runs until cancelled."""
        req = stats_pb2.WatchStatsRequest()
        req.interval.FromNanoseconds(int(interval * 1e9))
        call = self._stub.WatchStats(req)
        try:
            async for resp in call:
                yield resp.stats
        finally:
            call.cancel()
