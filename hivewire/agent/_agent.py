"""Agent SDK: register with the registry, keep the lease, run handlers on tasks from the inbox.

agent = Agent("summarizer", max_concurrency=8)

@agent.handler("summarize")
async def summarize(ctx: TaskContext) -> dict[str, str]:
    return {"summary": ctx.json()["text"][:100]}

asyncio.run(agent.run())
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from hivewire.agent._hooks import AgentHooks
from hivewire.agent._inbox import READ_BLOCK_MS, left_over, read_new
from hivewire.agent._redis import (
    REDIS_ERRORS,
    ResultWriter,
    ack,
    add_result,
    create_agent_redis,
)
from hivewire.agent._session import Identity, Session
from hivewire.agent._task import Handler, NonRetryableError, TaskContext, run_attempt
from hivewire.agent._tracing import processing_span, record_outcome
from hivewire.core.background import cancel_and_wait
from hivewire.core.backoff import backoff
from hivewire.core.defaults import DEFAULT_REDIS_URL, DEFAULT_REGISTRY_ADDR, env, env_float
from hivewire.core.lifecycle import AsyncComponent
from hivewire.core.redis_client import blocking_reads
from hivewire.core.wire import ENVELOPE_FIELD
from hivewire.v1 import stream_pb2

__all__ = ["Agent", "Handler", "NonRetryableError", "TaskContext"]

logger = logging.getLogger(__name__)

# The whole stop (drain, deregistration) fits in the drain grace; a fifth of it, at most this
# much, is kept for what comes after the tasks: cancelling the late ones, deregistering.
STOP_RESERVE_S = 2.0
DEFAULT_DRAIN_GRACE_S = 25.0


class Agent(AgentHooks, AsyncComponent):
    """A worker process: handlers by capability, run with at most `max_concurrency` at once."""

    def __init__(
        self,
        name: str,
        *,
        max_concurrency: int = 4,
        labels: dict[str, str] | None = None,
        registry_addr: str | None = None,
        redis_url: str | None = None,
        running_report_after: float | None = None,
        rpc_timeout: float = 5.0,
        drain_grace: float | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.name = name
        self.max_concurrency = max_concurrency
        self.labels = dict(labels or {})
        self.registry_addr = registry_addr or env("REGISTRY_ADDR", DEFAULT_REGISTRY_ADDR)
        self.redis_url = redis_url or env("REDIS_URL", DEFAULT_REDIS_URL)
        self.running_report_after = (
            env_float("AGENT_RUNNING_REPORT_AFTER", 0.1)
            if running_report_after is None
            else running_report_after
        )
        self.rpc_timeout = rpc_timeout
        # How long a stop may take in all (a container's stop grace is often 30 s).
        self.drain_grace = (
            env_float("AGENT_DRAIN_GRACE", DEFAULT_DRAIN_GRACE_S)
            if drain_grace is None
            else drain_grace
        )
        self._handlers: dict[str, Handler] = {}
        self._session: Session | None = None
        self._redis: aioredis.Redis | None = None
        self._reads: aioredis.Redis | None = None
        self._writer: ResultWriter | None = None
        self._running: dict[asyncio.Task[None], str] = {}
        self._entries: dict[asyncio.Task[None], bytes] = {}
        self._cancel_requested: set[str] = set()
        self._slot_free = asyncio.Event()
        self._stopping = False
        self._stopped = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._stop_lock = asyncio.Lock()

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
    def capabilities(self) -> list[str]:
        return sorted(self._handlers)

    @property
    def agent_id(self) -> str:
        """Current agent id ('' before registration; changes on re-registration)."""
        return self._session.identity.agent_id if self._session else ""

    @property
    def in_flight(self) -> int:
        return len(self._running)

    # Lifecycle
    async def start(self) -> None:
        """Register, connect to Redis and start the reader and heartbeat loops."""
        if self._session is not None:
            return
        if not self._handlers:
            raise ValueError("an agent needs at least one handler")
        self._redis = create_agent_redis(self.redis_url)
        self._reads = blocking_reads(self._redis, READ_BLOCK_MS / 1000)
        self._writer = ResultWriter(self._redis)
        session = Session(
            self.registry_addr,
            name=self.name,
            capabilities=self.capabilities,
            max_concurrency=self.max_concurrency,
            labels=self.labels,
            rpc_timeout=self.rpc_timeout,
            in_flight=lambda: len(self._running),
            on_cancel=self._cancel_tasks,
            running=lambda: sorted(set(self._running.values()) - {""}),
        )
        try:
            await session.register(retry_for=30.0)
        except BaseException:
            await session.close()
            await self._close_redis()
            raise
        self._session = session
        self._reader = asyncio.create_task(self._read_loop(), name=f"hivewire-reader-{self.name}")
        session.start_heartbeats(self._reader)
        logger.info(
            "agent %s registered as %s with %s", self.name, self.agent_id, self.capabilities
        )

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
        comes), stop reading, run what was delivered, let in-flight work finish, deregister."""
        async with self._stop_lock:
            if self._session is None:
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
            session = self._session
            session.mark_draining()
            rpc = min(self.rpc_timeout, max(0.5, left(reserve)))
            await session.heartbeat_now(draining=True, within=rpc)
            await cancel_and_wait([self._reader])
            await self._run_left_over()
            pending = set(self._running)
            if pending:
                _, late = await asyncio.wait(pending, timeout=left(reserve))
                for task in late:
                    task.cancel()
                if late:
                    logger.warning("drain grace passed; abandoning %d task(s)", len(late))
                    await asyncio.wait(late, timeout=min(1.0, max(0.1, left())))
            await session.stop_heartbeats()
            await session.deregister(within=min(self.rpc_timeout, max(0.5, left())))
            await session.close()
            await self._close_redis()
            self._session = None
            self._stopped.set()
            logger.info("agent %s stopped", self.name)

    async def _run_left_over(self) -> None:
        """Start what the cancelled read may have taken, and what is still unread."""
        assert self._redis is not None and self._session is not None
        identity = self._session.identity
        try:
            entries = await left_over(
                self._redis, identity, self.max_concurrency, set(self._entries.values())
            )
        except (*REDIS_ERRORS, ResponseError) as exc:
            # Left in the inbox: the coordinator reclaims it once the agent is gone.
            logger.warning("could not collect the rest of the inbox: %s", exc)
            return
        for entry_id, fields in entries:
            self._dispatch(identity, entry_id, fields)

    async def _close_redis(self) -> None:
        for client in (self._reads, self._redis):
            if client is not None:
                await client.aclose()
        self._reads = self._redis = None

    async def _enter(self) -> None:
        await self.start()

    async def _exit(self) -> None:
        await self.stop()

    # Delivery
    async def _read_loop(self) -> None:
        assert self._reads is not None and self._session is not None
        delays = backoff(0.05, 2.0)
        while not self._stopping:
            free = self.max_concurrency - len(self._running)
            if free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            identity = self._session.identity
            try:
                entries = await read_new(self._reads, identity, free)
            except REDIS_ERRORS as exc:
                logger.warning("inbox read failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(next(delays))
                continue
            except ResponseError as exc:
                # NOGROUP, or UNBLOCKED when the inbox is deleted during the blocking read:
                # the coordinator reclaimed it after this agent's lease ran out.
                if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                    raise
                logger.warning("inbox %s is gone; re-registering", identity.inbox_stream)
                await self._session.reregister(identity)
                continue
            delays = backoff(0.05, 2.0)
            for entry_id, fields in entries:
                self._dispatch(identity, entry_id, fields)

    def _dispatch(self, identity: Identity, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        raw = fields.get(ENVELOPE_FIELD)
        envelope = stream_pb2.TaskEnvelope()
        try:
            envelope.ParseFromString(raw or b"")
        except Exception:
            logger.error("dropping malformed inbox entry %r", entry_id)
            assert self._redis is not None
            task = asyncio.create_task(ack(self._redis, identity, entry_id))
        else:
            if not envelope.agent_id:
                envelope.agent_id = identity.agent_id
            task = asyncio.create_task(self._run_traced(identity, entry_id, envelope))
        self._running[task] = envelope.task_id
        self._entries[task] = entry_id
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        task_id = self._running.pop(task, "")
        self._entries.pop(task, None)
        self._cancel_requested.discard(task_id)
        self._slot_free.set()
        if not task.cancelled() and task.exception() is not None:
            logger.error("task runner failed", exc_info=task.exception())

    async def _run_traced(
        self, identity: Identity, entry_id: bytes, envelope: stream_pb2.TaskEnvelope
    ) -> None:
        """One delivery inside its CONSUMER span (see _tracing.py)."""
        with processing_span(envelope, identity.inbox_stream):
            await self._run_one(identity, entry_id, envelope)

    async def _run_one(
        self, identity: Identity, entry_id: bytes, envelope: stream_pb2.TaskEnvelope
    ) -> None:
        handler = self._handlers.get(envelope.capability)
        redis = self._redis
        assert redis is not None

        async def report_started(result: stream_pb2.TaskResult) -> None:
            try:
                await add_result(redis, identity, result)
            except REDIS_ERRORS as exc:
                logger.warning("could not report start of %s: %s", envelope.task_id, exc)

        try:
            result = await run_attempt(
                envelope, handler, report_started, self.running_report_after, self.task_hooks
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
        assert self._writer is not None
        await self._writer.complete(identity, entry_id, result)

    def _cancel_tasks(self, task_ids: list[str]) -> None:
        wanted = set(task_ids)
        for task, task_id in list(self._running.items()):
            if task_id in wanted:
                self._cancel_requested.add(task_id)
                task.cancel()
