"""Agent SDK: register with the registry, keep the lease, run handlers on tasks from the inbox.

agent = Agent("summarizer", max_concurrency=8)

@agent.handler("summarize")
async def summarize(ctx: TaskContext) -> dict[str, str]:
    return {"summary": ctx.json()["text"][:100]}

asyncio.run(agent.run())
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
from collections.abc import Callable

from hivewire.agent._grpc import GrpcTransport
from hivewire.agent._hooks import AgentHooks
from hivewire.agent._redis import RedisTransport
from hivewire.agent._spawn import Spawner
from hivewire.agent._task import Handler, NonRetryableError, TaskContext, run_attempt
from hivewire.agent._tracing import processing_span, record_outcome
from hivewire.agent._transport import TRANSPORTS, AgentView, Delivery, Registration, Transport
from hivewire.core.credentials import token_from_env
from hivewire.core.defaults import (
    DEFAULT_GATEWAY_ADDR,
    DEFAULT_REDIS_URL,
    DEFAULT_REGISTRY_ADDR,
    client_setting,
    env,
    env_float,
)
from hivewire.core.lifecycle import AsyncComponent
from hivewire.core.tls import TlsConfig, tls_from_env
from hivewire.v1 import stream_pb2

__all__ = ["Agent", "Handler", "NonRetryableError", "TaskContext", "run_agent"]

logger = logging.getLogger(__name__)

# How long stop() waits for the delivery loop to return before cancelling it (the transport's
# drain() wakes it at once).
READER_STOP_TIMEOUT = 7.0
# The whole stop (drain, deregistration) fits in the drain grace; a fifth of it, at most this
# much, is kept for what comes after the tasks: cancelling the late ones, deregistering.
STOP_RESERVE_S = 2.0
DEFAULT_DRAIN_GRACE_S = 25.0
# Slots when max_concurrency is not given. Coroutine handlers share the event loop and mostly
# wait (on a model, an API, a subprocess), so an agent whose handlers are all `async def` runs
# up to 100 tasks at once (Hatchet's default slots; taskiq's max_async_tasks). A blocking
# handler takes a thread of its own for the whole attempt, so an agent with any sync handler
# gets few slots: more would hold tasks that other agents could run.
DEFAULT_ASYNC_CONCURRENCY = 100
DEFAULT_SYNC_CONCURRENCY = 4


class Agent(AgentHooks, AsyncComponent):
    """A worker process: handlers by capability, run with at most `max_concurrency` at once
    (default: 100 when every handler is `async def`, else 4).

    `transport` is how it reaches Hivewire: "redis" (default; the registry over gRPC and its
    own inbox on Redis) or "grpc" (one AgentService stream to the gateway at `gateway_addr`,
    no Redis credentials); default $HIVEWIRE_AGENT_TRANSPORT. docs/agents.md compares them.
    Addresses and `tls` default to HIVEWIRE_* variables, else to the client config `hivewire up`
    wrote (docs/security.md); `tls=PLAINTEXT` dials plaintext whatever they say. `token`
    (default HIVEWIRE_TOKEN, else the client config's) is its agent token.
    """

    def __init__(
        self,
        name: str,
        *,
        max_concurrency: int | None = None,
        labels: dict[str, str] | None = None,
        registry_addr: str | None = None,
        redis_url: str | None = None,
        running_report_after: float | None = None,
        rpc_timeout: float = 5.0,
        drain_grace: float | None = None,
        transport: str | None = None,
        gateway_addr: str | None = None,
        tls: TlsConfig | None = None,
        token: str | None = None,
    ) -> None:
        self.transport = transport or env("AGENT_TRANSPORT", "redis")
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, not {self.transport!r}")
        self.gateway_addr = gateway_addr or client_setting("GATEWAY_ADDR", DEFAULT_GATEWAY_ADDR)
        self.name = name
        self._max_concurrency: int | None = None
        if max_concurrency is not None:
            self.max_concurrency = max_concurrency
        self.labels = dict(labels or {})
        self.registry_addr = registry_addr or client_setting("REGISTRY_ADDR", DEFAULT_REGISTRY_ADDR)
        self.redis_url = redis_url or client_setting("REDIS_URL", DEFAULT_REDIS_URL)
        self.tls = tls if tls is not None else tls_from_env()
        self.token = token_from_env(token)
        self.running_report_after = (
            env_float("AGENT_RUNNING_REPORT_AFTER", 0.1)
            if running_report_after is None
            else running_report_after
        )
        self.rpc_timeout = rpc_timeout
        # How long a whole stop may take (a container's stop grace is often 30 s).
        self.drain_grace = (
            env_float("AGENT_DRAIN_GRACE", DEFAULT_DRAIN_GRACE_S)
            if drain_grace is None
            else drain_grace
        )
        self._handlers: dict[str, Handler] = {}
        self._transport: Transport | None = None
        self._running: dict[asyncio.Task[None], str] = {}
        self._cancel_requested: set[str] = set()
        self._slot_free = asyncio.Event()
        self._stopping = False
        self._drained = asyncio.Event()  # the transport said DRAINING: no new work comes
        self._remote_stop: asyncio.Future[None] | None = None  # stop() after a DrainAgent
        self._stopped = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._stop_lock = asyncio.Lock()
        # Child tasks (ctx.spawn) go through the gateway; its channel opens on the first spawn.
        self._spawner = Spawner(self.gateway_addr, self.tls, rpc_timeout, token=self.token)

    # Handlers
    def handler(self, capability: str) -> Callable[[Handler], Handler]:
        """Decorator: run the function for tasks of `capability`."""
        if not capability or "," in capability:
            raise ValueError(f"invalid capability name {capability!r}")

        def register(fn: Handler) -> Handler:
            self._handlers[capability] = fn
            return fn

        return register

    def add_handler(self, capability: str, fn: Handler) -> None:
        self.handler(capability)(fn)

    @property
    def max_concurrency(self) -> int:
        """The agent's slots: as given, else DEFAULT_ASYNC_CONCURRENCY when every handler is a
        coroutine function and DEFAULT_SYNC_CONCURRENCY otherwise (fixed once it registers)."""
        if self._max_concurrency is not None:
            return self._max_concurrency
        handlers = self._handlers.values()
        if handlers and all(inspect.iscoroutinefunction(fn) for fn in handlers):
            return DEFAULT_ASYNC_CONCURRENCY
        return DEFAULT_SYNC_CONCURRENCY

    @max_concurrency.setter
    def max_concurrency(self, value: int) -> None:
        if value < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._max_concurrency = value

    @property
    def capabilities(self) -> list[str]:
        return sorted(self._handlers)

    @property
    def agent_id(self) -> str:
        """Current agent id ('' before registration; changes on re-registration)."""
        return self._transport.agent_id if self._transport else ""

    @property
    def in_flight(self) -> int:
        return len(self._running)

    # Lifecycle
    async def start(self) -> None:
        """Register through the transport and start the delivery and heartbeat loops."""
        if self._transport is not None:
            return
        if not self._handlers:
            raise ValueError("an agent needs at least one handler")
        transport = self._make_transport()
        view = AgentView(self._running_ids, self._cancel_tasks, self._drained_remotely)
        await transport.start(view)
        self._transport = transport
        self._reader = asyncio.create_task(self._read_loop(), name=f"hivewire-reader-{self.name}")
        transport.start_heartbeats(self._reader)
        logger.info(
            "agent %s registered as %s with %s (%s transport)",
            self.name,
            self.agent_id,
            self.capabilities,
            self.transport,
        )

    def _make_transport(self) -> Transport:
        self._max_concurrency = self.max_concurrency  # what it registers with, from now on
        registration = Registration(
            self.name,
            self.capabilities,
            self.max_concurrency,
            self.labels,
            self.rpc_timeout,
            self.tls,
            self.token,
        )
        if self.transport == "grpc":
            return GrpcTransport(registration, self.gateway_addr)
        return RedisTransport(registration, self.registry_addr, self.redis_url)

    async def run(self) -> None:
        """Start if needed and run until stop() (or until the reader fails, which re-raises)."""
        await self.start()
        assert self._reader is not None
        stopped = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait({self._reader, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if self._reader.done() and not self._reader.cancelled() and self._reader.exception():
            await self.stop()
            raise self._reader.exception()  # type: ignore[misc]
        await self.stop()

    async def stop(self, grace: float | None = None) -> None:
        """Drain, all within `grace` (default `drain_grace`): report draining (no new work
        comes), stop reading, run what was delivered, finish in-flight work, deregister."""
        async with self._stop_lock:
            transport = self._transport
            if transport is None:
                self._stopped.set()
                return
            loop = asyncio.get_running_loop()
            budget = self.drain_grace if grace is None else grace
            deadline = loop.time() + budget
            reserve = min(STOP_RESERVE_S, budget / 5)

            def left(keep: float = 0.0) -> float:
                return max(0.0, deadline - keep - loop.time())

            self._stopping = True
            self._slot_free.set()
            await transport.drain(within=min(self.rpc_timeout, max(0.5, left(reserve))))
            self._drained.set()
            if self._reader is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    limit = min(READER_STOP_TIMEOUT, left(reserve))
                    await asyncio.wait_for(asyncio.shield(self._reader), limit)
                if not self._reader.done():
                    self._reader.cancel()
            pending = set(self._running)
            if pending:
                _, late = await asyncio.wait(pending, timeout=left(reserve))
                for task in late:
                    task.cancel()
                if late:
                    logger.warning("drain grace passed; abandoning %d task(s)", len(late))
                    await asyncio.wait(late, timeout=min(1.0, max(0.1, left())))
            await transport.close(within=min(self.rpc_timeout, max(0.5, left())))
            await self._spawner.close()
            self._transport = None
            self._stopped.set()
            logger.info("agent %s stopped", self.name)

    async def _enter(self) -> None:
        await self.start()

    async def _exit(self) -> None:
        await self.stop()

    # Delivery
    async def _read_loop(self) -> None:
        assert self._transport is not None
        transport = self._transport
        while not self._stopping:
            free = self.max_concurrency - len(self._running)
            if free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            for delivery in await transport.receive(free):
                self._dispatch(delivery)
        # Stopping: once drained (receive then returns at once), what was delivered to this
        # agent and not yet handed out runs too.
        await self._drained.wait()
        for delivery in await transport.receive(self.max_concurrency):
            self._dispatch(delivery)

    def _dispatch(self, delivery: Delivery) -> None:
        task = asyncio.create_task(self._run_traced(delivery))
        self._running[task] = delivery.envelope.task_id
        task.add_done_callback(self._finished)

    def _running_ids(self) -> list[str]:
        return sorted(set(self._running.values()))

    def _finished(self, task: asyncio.Task[None]) -> None:
        task_id = self._running.pop(task, "")
        self._cancel_requested.discard(task_id)
        self._slot_free.set()
        if not task.cancelled() and task.exception() is not None:
            logger.error("task runner failed", exc_info=task.exception())

    async def _run_traced(self, delivery: Delivery) -> None:
        """One delivery inside its CONSUMER span (see _tracing.py)."""
        with processing_span(delivery.envelope, delivery.source):
            await self._run_one(delivery)

    async def _run_one(self, delivery: Delivery) -> None:
        envelope = delivery.envelope
        handler = self._handlers.get(envelope.capability)
        transport = self._transport
        assert transport is not None
        try:
            result = await run_attempt(
                envelope,
                handler,
                transport.report,
                self.running_report_after,
                self.task_hooks,
                spawner=self._spawner,
            )
        except asyncio.CancelledError:
            if envelope.task_id not in self._cancel_requested:
                raise
            result = stream_pb2.TaskResult(
                task_id=envelope.task_id,
                attempt=envelope.attempt,
                attempt_token=envelope.attempt_token,
                agent_id=envelope.agent_id,
                outcome=stream_pb2.TASK_OUTCOME_CANCELLED,
                error="cancelled on request",
            )
            result.end_time.GetCurrentTime()
        record_outcome(result, envelope)
        await transport.complete(delivery, result)

    def _drained_remotely(self) -> None:
        """An operator drained this agent: stop as on SIGTERM, once (run() then returns)."""
        if not self._stopping and not self._remote_stop:
            logger.info("agent %s drained by an operator; stopping when idle", self.name)
            self._remote_stop = asyncio.ensure_future(self.stop())

    def _cancel_tasks(self, task_ids: list[str]) -> None:
        wanted = set(task_ids)
        for task, task_id in list(self._running.items()):
            if task_id in wanted:
                self._cancel_requested.add(task_id)
                task.cancel()


def run_agent(agent: Agent) -> None:
    """Run an agent until SIGTERM or SIGINT, then drain (uses uvloop when available).

    The process exports traces as `hivewire-agent` when OTEL_EXPORTER_OTLP_ENDPOINT is set and
    serves /metrics when HIVEWIRE_AGENT_METRICS_PORT is set.
    """
    from hivewire.agent._process import observed_process

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(agent.stop()))
        with observed_process():
            await agent.run()

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        asyncio.run(main())
        return
    uvloop.run(main())
