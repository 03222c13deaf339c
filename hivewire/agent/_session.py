"""The agent's registry session: registration, heartbeats, re-registration, deregistration."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from hivewire.core.agent_states import IDENTITY_LOST_CODES
from hivewire.core.background import cancel_and_wait
from hivewire.core.backoff import backoff
from hivewire.core.defaults import channel_options
from hivewire.core.tls import PLAINTEXT, TlsConfig, aio_channel
from hivewire.core.tracing import client_interceptors
from hivewire.v1 import registry_pb2, registry_pb2_grpc

logger = logging.getLogger(__name__)

RETRY_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# The registry no longer knows this identity (lease expired, agent OFFLINE): register anew.
REREGISTER_CODES = IDENTITY_LOST_CODES


@dataclass(frozen=True)
class Identity:
    """One registration: who the agent is and where its work arrives."""

    agent_id: str
    agent_token: str
    inbox_stream: str
    inbox_group: str
    results_stream: str
    lease_seconds: float
    # The Redis user made for this registration (password: agent_token); "" when none is.
    redis_username: str = ""


class Session:
    """Holds the current Identity and keeps its lease alive while the reader task lives."""

    def __init__(
        self,
        registry_addr: str,
        *,
        name: str,
        capabilities: list[str],
        max_concurrency: int,
        labels: dict[str, str],
        rpc_timeout: float,
        in_flight: Callable[[], int],
        on_cancel: Callable[[list[str]], None],
        running: Callable[[], list[str]] = list,
        tls: TlsConfig = PLAINTEXT,
        on_drain: Callable[[], None] = lambda: None,
        token: str = "",
    ) -> None:
        self._channel = aio_channel(
            registry_addr,
            tls,
            options=channel_options(),
            interceptors=client_interceptors(),
            token=token,
        )
        self._stub = registry_pb2_grpc.RegistryServiceStub(self._channel)
        self._request = registry_pb2.RegisterAgentRequest(
            name=name, capabilities=capabilities, max_concurrency=max_concurrency, labels=labels
        )
        self._timeout = rpc_timeout
        self._in_flight = in_flight
        self._on_cancel = on_cancel
        self._on_drain = on_drain
        self._running = running
        self._identity: Identity | None = None
        self._draining = False
        self._heartbeat: asyncio.Task[None] | None = None
        self._register_lock = asyncio.Lock()
        self.registrations = 0

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            raise RuntimeError("agent is not registered")
        return self._identity

    async def register(self, retry_for: float = 30.0) -> Identity:
        """RegisterAgent, retrying UNAVAILABLE/DEADLINE_EXCEEDED for up to `retry_for` seconds."""
        deadline = time.monotonic() + retry_for
        delays = backoff(0.1, 2.0)
        while True:
            try:
                resp = await self._stub.RegisterAgent(self._request, timeout=self._timeout)
                break
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRY_CODES or time.monotonic() >= deadline:
                    raise
                logger.warning("registry unavailable (%s); retrying", exc.code().name)
                await asyncio.sleep(next(delays))
        lease = resp.lease_duration.ToTimedelta().total_seconds() or 15.0
        self._identity = Identity(
            agent_id=resp.agent.agent_id,
            agent_token=resp.agent_token,
            inbox_stream=resp.inbox_stream,
            inbox_group=resp.inbox_group,
            results_stream=resp.results_stream,
            lease_seconds=lease,
            redis_username=resp.redis_username,
        )
        self.registrations += 1
        return self._identity

    async def reregister(self, stale: Identity) -> None:
        """Register anew unless another caller already replaced `stale`."""
        async with self._register_lock:
            if self._identity is not stale:
                return
            old = stale.agent_id
            delays = backoff(0.1, 5.0)
            while True:
                try:
                    new = await self.register(retry_for=0.0)
                    break
                except grpc.aio.AioRpcError as exc:
                    logger.warning("re-registration failed (%s); retrying", exc.code().name)
                    await asyncio.sleep(next(delays))
            logger.warning("agent %s lost its lease; re-registered as %s", old, new.agent_id)

    def start_heartbeats(self, reader: asyncio.Task[None]) -> None:
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(reader), name="hivewire-hb")

    async def _heartbeat_loop(self, reader: asyncio.Task[None]) -> None:
        delays = backoff(0.1, 5.0)
        interval = self.identity.lease_seconds / 3
        while not (reader.done() and not self._draining):
            identity = self.identity
            try:
                await self._send(identity, self._draining)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in REREGISTER_CODES and not self._draining:
                    await self.reregister(identity)
                    delays = backoff(0.1, 5.0)
                    continue
                logger.warning("heartbeat failed: %s %s", exc.code().name, exc.details())
                await asyncio.sleep(min(next(delays), interval))
                continue
            except Exception:
                logger.exception("heartbeat failed unexpectedly")
                await asyncio.sleep(min(next(delays), interval))
                continue
            delays = backoff(0.1, 5.0)
            interval = self.identity.lease_seconds / 3
            if reader.done():
                await asyncio.sleep(interval)  # draining: keep the lease while work finishes
            else:
                # Wake early if the reader dies: liveness is tied to the delivery loop.
                await asyncio.wait({reader}, timeout=interval)
        logger.warning("delivery loop ended; heartbeats stop")

    def mark_draining(self) -> None:
        """Later heartbeats say draining; they continue after the reader stops on purpose."""
        self._draining = True

    async def _send(self, identity: Identity, draining: bool, within: float | None = None) -> None:
        resp = await self._stub.SendHeartbeat(
            registry_pb2.SendHeartbeatRequest(
                agent_id=identity.agent_id,
                agent_token=identity.agent_token,
                in_flight=self._in_flight(),
                draining=draining,
                running_task_ids=self._running(),
            ),
            timeout=self._timeout if within is None else within,
        )
        if resp.cancel_task_ids:
            self._on_cancel(list(resp.cancel_task_ids))
        if resp.drain and not draining:
            self._on_drain()

    async def heartbeat_now(self, *, draining: bool, within: float | None = None) -> None:
        """One heartbeat outside the loop (used to announce draining); errors are logged."""
        self._draining = draining
        try:
            await self._send(self.identity, draining, within)
        except grpc.aio.AioRpcError as exc:
            logger.warning("draining heartbeat failed: %s", exc.code().name)

    async def stop_heartbeats(self) -> None:
        await cancel_and_wait([self._heartbeat])
        self._heartbeat = None

    async def deregister(self, within: float | None = None) -> None:
        identity = self.identity
        try:
            await self._stub.DeregisterAgent(
                registry_pb2.DeregisterAgentRequest(
                    agent_id=identity.agent_id, agent_token=identity.agent_token
                ),
                timeout=self._timeout if within is None else within,
            )
        except grpc.aio.AioRpcError as exc:
            logger.warning("deregistration failed: %s %s", exc.code().name, exc.details())

    async def close(self) -> None:
        await self._channel.close()
