"""Opening an agent stream: the hello read and checked, the identity resumed or registered,
and on a resume the attempts the agent was sent before taken back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from hivewire.v1 import agent_service_pb2 as pb
from hivewire.v1 import stream_pb2
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.redis import Redis
from hivewire_services.gateway.agents.identity import Identity, Registrar, check_hello
from hivewire_services.gateway.agents.inbox import InboxGone, pending
from hivewire_services.gateway.errors import DeadlineExceeded

logger = logging.getLogger(__name__)

Adopt = Callable[[Identity], Awaitable[None]]


@dataclass
class Opening:
    """The identity, and on a resume its pending attempts: `kept` are those the agent still
    holds (not sent again), `resend` the others."""

    identity: Identity
    pending: list[tuple[stream_pb2.TaskEnvelope, bytes]] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    @property
    def resend(self) -> list[stream_pb2.TaskEnvelope]:
        kept = set(self.kept)
        return [envelope for envelope, _ in self.pending if envelope.task_id not in kept]


async def read_hello(requests: AsyncIterator[pb.ConnectRequest], within: float) -> pb.AgentHello:
    """The first message, which must be a valid hello within `within` seconds."""
    try:
        async with asyncio.timeout(within):
            first = await anext(requests, None)
    except TimeoutError:
        raise DeadlineExceeded(f"no hello within {within:g}s", reason="NO_HELLO") from None
    if first is None or first.WhichOneof("message") != "hello":
        raise InvalidArgument("the first message must be hello", field="hello")
    check_hello(first.hello)
    return first.hello


async def open_identity(
    registrar: Registrar, redis: Redis, hello: pb.AgentHello, adopt: Adopt
) -> Opening:
    """Resume the identity the hello names (with what it was sent), else register anew.

    `adopt(identity)` runs before the inbox is read, so an older stream of the same agent on
    this gateway stops reading first.
    """
    if hello.resume_agent_id:
        identity = await registrar.resume(hello.resume_agent_id, hello.resume_agent_token)
        if identity is not None:
            await adopt(identity)
            try:
                entries = await pending(redis, identity)
            except InboxGone:
                logger.warning(
                    "agent %s has no inbox any more; registering anew", identity.agent_id
                )
            else:
                held = set(hello.running_task_ids)
                kept = [envelope.task_id for envelope, _ in entries if envelope.task_id in held]
                return Opening(identity, entries, kept)
    identity = await registrar.register(hello)
    await adopt(identity)
    return Opening(identity)
