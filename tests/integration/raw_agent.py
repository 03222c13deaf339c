"""A raw AgentService client for protocol tests: one Connect stream, message by message."""

from __future__ import annotations

import asyncio
import collections
import uuid
from typing import Any

import grpc
from google.rpc import status_pb2
from grpc_status import rpc_status

from hivewire.core.wire import ENVELOPE_FIELD
from hivewire.v1 import agent_service_pb2 as pb
from hivewire.v1 import agent_service_pb2_grpc, stream_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis

Request = pb.ConnectRequest


def hello(**fields: Any) -> pb.AgentHello:
    """A valid hello, with `fields` replaced."""
    base: dict[str, Any] = {"name": "raw", "capabilities": ["echo"], "max_concurrency": 2}
    return pb.AgentHello(**{**base, **fields})


class RawAgent:
    """Speaks the protocol by hand; every read has a deadline. Batched assignments and acks
    are handed out one at a time; cancels are kept in `cancelled`."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.call = agent_service_pb2_grpc.AgentServiceStub(channel).Connect()
        self.welcome = pb.AgentWelcome()
        self.assigned: collections.deque[stream_pb2.TaskEnvelope] = collections.deque()
        self.acked: collections.deque[pb.ResultAck] = collections.deque()
        self.cancelled: list[str] = []

    async def open(self, first: pb.AgentHello | None = None) -> pb.AgentWelcome:
        await self.send(hello=first or hello())
        msg = await self.next()
        assert msg.WhichOneof("message") == "welcome", msg
        self.welcome = msg.welcome
        return msg.welcome

    @property
    def agent_id(self) -> str:
        return self.welcome.agent.agent_id

    async def send(self, **message: Any) -> None:
        await self.call.write(Request(**message))

    async def next(self, within: float = 10.0) -> pb.ConnectResponse:
        async with asyncio.timeout(within):
            msg = await self.call.read()
        assert msg is not grpc.aio.EOF, "the stream ended"
        return msg

    async def pull(self) -> str:
        """Read one message into the buffers; its kind."""
        msg = await self.next()
        kind = msg.WhichOneof("message")
        if kind == "assignments":
            self.assigned.extend(msg.assignments.tasks)
        elif kind == "acks":
            self.acked.extend(msg.acks.acks)
        elif kind == "cancel":
            # The registry cancels tasks put straight into an inbox: it has no record of them.
            self.cancelled.extend(msg.cancel.task_ids)
        else:
            raise AssertionError(f"unexpected {msg}")
        return str(kind)

    async def assignment(self) -> stream_pb2.TaskEnvelope:
        while not self.assigned:
            await self.pull()
        return self.assigned.popleft()

    async def ack(self) -> pb.ResultAck:
        while not self.acked:
            await self.pull()
        return self.acked.popleft()

    async def report(
        self,
        envelope: stream_pb2.TaskEnvelope,
        outcome: stream_pb2.TaskOutcome.ValueType = stream_pb2.TASK_OUTCOME_SUCCEEDED,
        **fields: Any,
    ) -> None:
        base: dict[str, Any] = {
            "task_id": envelope.task_id,
            "attempt": envelope.attempt,
            "attempt_token": envelope.attempt_token,
            "outcome": outcome,
            "result": envelope.payload,
        }
        await self.send(reports={"reports": [stream_pb2.TaskResult(**{**base, **fields})]})

    async def ended(self) -> grpc.aio.AioRpcError | None:
        """Read to the end of the stream: None if it ended OK, else its error."""
        try:
            async with asyncio.timeout(30):
                while await self.call.read() is not grpc.aio.EOF:
                    pass
        except grpc.aio.AioRpcError as exc:
            return exc
        return None


def rich_status(err: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The google.rpc.Status carried in the grpc-status-details-bin trailer."""
    for key, value in err.trailing_metadata() or ():
        if key == rpc_status.GRPC_DETAILS_METADATA_KEY:
            return status_pb2.Status.FromString(value)
    raise AssertionError(f"no rich status in {err!r}")


async def put_tasks(redis: Redis, keys: Keys, agent_id: str, n: int) -> list[str]:
    """XADD n echo envelopes to the agent's inbox at once (one MULTI), as the coordinator would."""
    ids = [uuid.uuid4().hex for _ in range(n)]
    async with redis.pipeline(transaction=True) as pipe:
        for task_id in ids:
            envelope = stream_pb2.TaskEnvelope(
                task_id=task_id,
                attempt=1,
                attempt_token=uuid.uuid4().hex,
                capability="echo",
                payload=task_id.encode(),
                agent_id=agent_id,
            )
            pipe.xadd(keys.inbox(agent_id), {ENVELOPE_FIELD: envelope.SerializeToString()})
        await pipe.execute()
    return ids
