"""WatchAgents fan-out: one shared reader tails agent_changes into bounded per-subscriber queues."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import Any

from hivewire.core.backoff import backoff_delay
from hivewire.v1 import agent_pb2, registry_pb2
from hivewire_services.common.clock import now_ms, ts_from_ms
from hivewire_services.common.errors import HivewireError, ResourceExhausted, Unavailable
from hivewire_services.common.keys import Keys
from hivewire_services.common.loops import cancel_and_wait
from hivewire_services.common.redis import REDIS_UNAVAILABLE, Redis
from hivewire_services.common.validation import check_id
from hivewire_services.registry.store import AgentStore

logger = logging.getLogger(__name__)

_VALID_CHANGES = {registry_pb2.AGENT_CHANGE_UPSERTED, registry_pb2.AGENT_CHANGE_REMOVED}


class Subscription:
    """One watcher's bounded queue; ended with an error when it overflows or the hub stops."""

    def __init__(self, maxsize: int) -> None:
        self._queue: asyncio.Queue[registry_pb2.WatchAgentsResponse | None] = asyncio.Queue(
            max(1, maxsize)
        )
        self._end: HivewireError | None = None

    @property
    def ended(self) -> bool:
        return self._end is not None

    def offer(self, item: registry_pb2.WatchAgentsResponse) -> bool:
        """Queue an item without waiting; on overflow end the subscription and return False."""
        if self._end is not None:
            return False
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.end(
                ResourceExhausted(
                    "watcher fell behind the agent changes; watch again",
                    reason="WATCH_QUEUE_FULL",
                )
            )
            return False
        return True

    def end(self, error: HivewireError) -> None:
        """Drop what is queued and make the next get() raise `error`."""
        if self._end is not None:
            return
        self._end = error
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def get(self) -> registry_pb2.WatchAgentsResponse:
        item = await self._queue.get()
        if item is None:
            assert self._end is not None
            raise self._end
        return item


class ChangeHub:
    """Tails keys.agent_changes once per process and fans each change out to every subscriber.

    The reader's position is taken (the stream's last id) before any subscriber is accepted,
    and a subscriber is registered before it reads its snapshot: every change is then either
    reflected in the snapshot or delivered after it (possibly both, which is harmless because
    each message carries the agent as re-read from its hash).
    """

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        store: AgentStore,
        queue_size: int,
        *,
        ready_timeout: float = 5.0,
        block_ms: int = 1000,
        batch: int = 512,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._store = store
        self._queue_size = queue_size
        self._ready_timeout = ready_timeout
        self._block_ms = block_ms
        self._batch = batch
        self._subs: set[Subscription] = set()
        self._last_id: bytes | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="registry-agent-changes")

    async def stop(self) -> None:
        """Stop reading and end every subscription with UNAVAILABLE (watchers reconnect)."""
        self._stopped = True
        await cancel_and_wait([self._task])
        for sub in list(self._subs):
            sub.end(Unavailable("registry is shutting down", reason="SHUTTING_DOWN"))
        self._subs.clear()

    async def subscribe(self) -> Subscription:
        if self._stopped:
            raise Unavailable("registry is shutting down", reason="SHUTTING_DOWN")
        try:
            await asyncio.wait_for(self._ready.wait(), self._ready_timeout)
        except TimeoutError:
            raise Unavailable(
                "agent changes are not readable yet", reason="REDIS_UNAVAILABLE"
            ) from None
        sub = Subscription(self._queue_size)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                if self._last_id is None:
                    self._last_id = await self._tail_id()
                    self._ready.set()
                reply: Any = await self._redis.xread(
                    {self._keys.agent_changes: self._last_id},
                    count=self._batch,
                    block=self._block_ms,
                )
                if reply:
                    entries = reply[0][1]
                    if self._subs:
                        await self._dispatch(entries)
                    # Advance only after dispatch, so a failed hydration is retried.
                    self._last_id = entries[-1][0]
                failures = 0
            except Exception as exc:
                failures += 1
                delay = backoff_delay(failures)
                logger.warning(
                    "reading agent changes failed (%s); retry in %.2fs",
                    type(exc).__name__,
                    delay,
                    exc_info=not isinstance(exc, REDIS_UNAVAILABLE),
                )
                await asyncio.sleep(delay)

    async def _tail_id(self) -> bytes:
        last: Any = await self._redis.xrevrange(self._keys.agent_changes, count=1)
        return bytes(last[0][0]) if last else b"0-0"

    async def _dispatch(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        changes: list[tuple[str, int, int]] = []
        for entry_id, fields in entries:
            try:
                agent_id = check_id(fields.get(b"agent_id", b"").decode(), "agent_id")
                change = int(fields.get(b"change", b"0"))
            except Exception:
                logger.warning("skipping malformed agent change %r", entry_id)
                continue
            if change in _VALID_CHANGES:
                changes.append((agent_id, change, int(entry_id.split(b"-")[0])))
        agents = await self._store.load_agents([agent_id for agent_id, _, _ in changes])
        for (agent_id, change, ms), agent in zip(changes, agents, strict=True):
            message = to_message(agent_id, change, ms, agent)
            for sub in list(self._subs):
                if not sub.offer(message):
                    self._subs.discard(sub)


def to_message(
    agent_id: str, change: int, ms: int, agent: agent_pb2.Agent | None
) -> registry_pb2.WatchAgentsResponse:
    """A live change; an agent that is offline or gone is always REMOVED."""
    if agent is None:
        agent = agent_pb2.Agent(agent_id=agent_id, state=agent_pb2.AGENT_STATE_OFFLINE)
    if agent.state == agent_pb2.AGENT_STATE_OFFLINE:
        change = registry_pb2.AGENT_CHANGE_REMOVED
    return registry_pb2.WatchAgentsResponse(
        change=change,  # type: ignore[arg-type]
        agent=agent,
        time=ts_from_ms(ms),
    )


async def watch_agents(
    hub: ChangeHub, store: AgentStore
) -> AsyncGenerator[registry_pb2.WatchAgentsResponse, None]:
    """A snapshot of every live agent, one SYNCED marker, then live changes until ended."""
    sub = await hub.subscribe()
    try:
        now = ts_from_ms(now_ms())
        for agent in await store.snapshot():
            yield registry_pb2.WatchAgentsResponse(
                change=registry_pb2.AGENT_CHANGE_SNAPSHOT, agent=agent, time=now
            )
        yield registry_pb2.WatchAgentsResponse(
            change=registry_pb2.AGENT_CHANGE_SYNCED, time=ts_from_ms(now_ms())
        )
        while True:
            yield await sub.get()
    finally:
        hub.unsubscribe(sub)
