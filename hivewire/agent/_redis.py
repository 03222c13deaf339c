"""The direct Redis transport: the registry over gRPC, the agent's inbox and results on Redis."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast
from urllib.parse import unquote, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.credentials import CredentialProvider
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hivewire.agent._session import Identity, Session
from hivewire.agent._transport import AgentView, Delivery, Registration
from hivewire.core.backoff import backoff
from hivewire.core.redis_client import blocking_reads, close_quietly, connection_class
from hivewire.core.result_writer import REDIS_ERRORS, Receipt, ResultWriter, acknowledge
from hivewire.core.wire import ENVELOPE_FIELD
from hivewire.v1 import stream_pb2

logger = logging.getLogger(__name__)

# An idle agent's inbox read blocks this long, on a connection of its own: it wakes for work,
# not on a timer. drain() wakes it; what the woken read may have taken is collected then.
READ_BLOCK_MS = 30_000
# drain() cancels the blocked read again until it has noticed (redis-py may swallow one cancel).
WAKE_TRIES = 20
WAKE_EVERY_S = 0.05

Entry = tuple[bytes, dict[bytes, bytes]]


class IdentityCredentials(CredentialProvider):
    """AUTH as the Redis user the registry made for the current registration, or, when it
    made none, with the user and password of the Redis URL (if any). Asked on every new
    connection, so after a re-registration connections come back as the new user (the
    registry deletes the old one, which also closes its connections)."""

    def __init__(self, url: str, identity: Callable[[], Identity | None]) -> None:
        parts = urlsplit(url)
        self._url_user = unquote(parts.username or "")
        self._url_password = unquote(parts.password or "")
        self._identity = identity

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        identity = self._identity()
        if identity is not None and identity.redis_username:
            return identity.redis_username, identity.agent_token
        if self._url_user:
            return self._url_user, self._url_password
        return (self._url_password,) if self._url_password else ()  # type: ignore[return-value]

    async def get_credentials_async(self) -> tuple[str] | tuple[str, str]:
        return self.get_credentials()


def without_credentials(url: str) -> str:
    """`url` minus its user and password (IdentityCredentials supplies them)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def create_agent_redis(url: str, credentials: CredentialProvider | None = None) -> aioredis.Redis:
    """hiredis client with short timeouts and capped retries (the inbox is read on a client of
    its own, `blocking_reads`); with `credentials`, those replace any in the URL."""
    return aioredis.Redis.from_url(
        without_credentials(url) if credentials is not None else url,
        credential_provider=credentials,
        socket_timeout=5.0,
        socket_connect_timeout=2.0,
        retry=Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), 3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=10,
        decode_responses=False,
        **connection_class(url),
    )


def _entries(reply: object) -> list[Entry]:
    streams = cast(list[tuple[bytes, list[Entry]]], reply or [])
    return [entry for _stream, entries in streams for entry in entries]


class RedisTransport:
    """Registers with the registry (Session), reads the inbox with XREADGROUP and writes
    results with the shared ResultWriter (XADD results + XACK + XDEL in one MULTI)."""

    def __init__(self, registration: Registration, registry_addr: str, redis_url: str) -> None:
        self._registration = registration
        self._registry_addr = registry_addr
        self._redis_url = redis_url
        self._session: Session | None = None
        self._redis: aioredis.Redis | None = None
        self._reads: aioredis.Redis | None = None
        self._writer: ResultWriter | None = None
        self._delays = backoff(0.05, 2.0)
        self._draining = False
        self._reading: asyncio.Task[object] | None = None  # the task blocked in the inbox read
        self._handed: set[bytes] = set()  # entries handed to the run loop, not yet completed

    @property
    def agent_id(self) -> str:
        return self._session.identity.agent_id if self._session else ""

    async def start(self, view: AgentView) -> None:
        credentials = IdentityCredentials(
            self._redis_url, lambda: self._session.identity if self._session else None
        )
        self._redis = create_agent_redis(self._redis_url, credentials)
        self._reads = blocking_reads(self._redis, READ_BLOCK_MS / 1000)
        self._writer = ResultWriter(self._redis)
        reg, running = self._registration, view.running
        session = Session(
            self._registry_addr,
            name=reg.name,
            capabilities=reg.capabilities,
            max_concurrency=reg.max_concurrency,
            labels=reg.labels,
            rpc_timeout=reg.rpc_timeout,
            in_flight=lambda: len(running()),
            on_cancel=view.on_cancel,
            running=running,
            tls=reg.tls,
            on_drain=view.on_drain,
            token=reg.token,
        )
        try:
            await session.register(retry_for=30.0)
        except BaseException:
            await session.close()
            await self._close_clients()
            raise
        self._session = session

    def start_heartbeats(self, reader: asyncio.Task[None]) -> None:
        assert self._session is not None
        self._session.start_heartbeats(reader)

    async def receive(self, count: int) -> list[Delivery]:
        assert self._reads is not None and self._session is not None
        identity = self._session.identity
        if self._draining:
            return await self._deliveries(identity, await self._left_over(identity))
        self._reading = asyncio.current_task()
        try:
            reply = await self._reads.xreadgroup(
                identity.inbox_group,
                identity.agent_id,
                {identity.inbox_stream: ">"},
                count=count,
                block=READ_BLOCK_MS,
            )
        except asyncio.CancelledError:
            if not self._draining:
                raise
            # drain() woke the read: no new work comes now. What the read may have taken is
            # pending with this consumer; it and the rest of the inbox are run while draining.
            self._reading = None  # drain() cancels no more
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            return await self._deliveries(identity, await self._left_over(identity))
        except REDIS_ERRORS as exc:
            logger.warning("inbox read failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(next(self._delays))
            return []
        except NoPermissionError:
            # A connection still authenticated as the Redis user of an earlier registration
            # (the registry had not removed it): connect again as the current one.
            logger.warning("inbox read refused to a former redis user; reconnecting")
            for client in (self._reads, self._redis):
                if client is not None:
                    await client.connection_pool.disconnect()
            await asyncio.sleep(next(self._delays))
            return []
        except ResponseError as exc:
            # NOGROUP, or UNBLOCKED when the inbox is deleted during the blocking read:
            # the coordinator reclaimed it after this agent's lease ran out.
            if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                raise
            logger.warning("inbox %s is gone; re-registering", identity.inbox_stream)
            await self._session.reregister(identity)
            return []
        finally:
            self._reading = None
        self._delays = backoff(0.05, 2.0)
        return await self._deliveries(identity, _entries(reply))

    async def _deliveries(self, identity: Identity, entries: list[Entry]) -> list[Delivery]:
        deliveries = []
        for entry_id, fields in entries:
            delivery = await self._delivery(identity, entry_id, fields)
            if delivery is not None:
                self._handed.add(entry_id)
                deliveries.append(delivery)
        return deliveries

    async def _left_over(self, identity: Identity) -> list[Entry]:
        """Entries delivered to this consumer and never handed out (a woken read may have taken
        them), then those never delivered: once the registry has the agent DRAINING no new
        ones arrive, so nothing is left behind. A failed read leaves them to the reclaim."""
        assert self._redis is not None
        out: list[Entry] = []
        try:
            for start in ("0", ">"):  # "0": after this id, the entries pending here
                while True:
                    reply = await self._redis.xreadgroup(
                        identity.inbox_group,
                        identity.agent_id,
                        {identity.inbox_stream: start},
                        count=self._registration.max_concurrency,
                    )
                    entries = _entries(reply)
                    out += [(i, f) for i, f in entries if f and i not in self._handed]
                    if len(entries) < self._registration.max_concurrency:
                        break
                    if start != ">":
                        start = entries[-1][0].decode()
        except (*REDIS_ERRORS, ResponseError) as exc:
            logger.warning("could not collect the rest of the inbox: %s", exc)
        return out

    async def _delivery(
        self, identity: Identity, entry_id: bytes, fields: dict[bytes, bytes]
    ) -> Delivery | None:
        receipt = Receipt(identity.inbox_stream, identity.inbox_group, entry_id)
        envelope = stream_pb2.TaskEnvelope()
        try:
            envelope.ParseFromString(fields.get(ENVELOPE_FIELD) or b"")
        except Exception:
            logger.error("dropping malformed inbox entry %r", entry_id)
            assert self._redis is not None
            try:
                await acknowledge(self._redis, receipt)
            except REDIS_ERRORS as exc:
                logger.warning("could not drop entry %r: %s", entry_id, exc)
            return None
        if not envelope.agent_id:
            envelope.agent_id = identity.agent_id
        return Delivery(envelope, (identity, receipt), identity.inbox_stream)

    async def report(self, result: stream_pb2.TaskResult) -> None:
        assert self._writer is not None and self._session is not None
        try:
            stored = await self._writer.write(self._session.identity.results_stream, result)
        except Exception as exc:  # a report is best effort: it never fails the attempt
            logger.warning("could not report on %s: %r", result.task_id, exc)
            return
        if not stored:
            logger.warning("could not report on %s", result.task_id)

    async def complete(self, delivery: Delivery, result: stream_pb2.TaskResult) -> None:
        assert self._writer is not None
        identity, receipt = cast(tuple[Identity, Receipt], delivery.receipt)
        try:
            await self._writer.write(identity.results_stream, result, receipt)
        finally:
            self._handed.discard(receipt.entry_id)

    async def drain(self, within: float | None = None) -> None:
        """Say DRAINING (the coordinators assign nothing more), then wake the blocked read."""
        assert self._session is not None
        self._session.mark_draining()
        await self._session.heartbeat_now(draining=True, within=within)
        self._draining = True
        for _ in range(WAKE_TRIES):
            reading = self._reading
            if reading is None or reading.done():
                return
            reading.cancel()
            await asyncio.sleep(WAKE_EVERY_S)

    async def close(self, within: float | None = None) -> None:
        session = self._session
        if session is not None:
            await session.stop_heartbeats()
            await session.deregister(within)
            await session.close()
        if self._writer is not None:
            await self._writer.close()
        await self._close_clients()
        self._session = None

    async def _close_clients(self) -> None:
        for client in (self._reads, self._redis):
            if client is not None:
                await close_quietly(client)
        self._reads = self._redis = None
