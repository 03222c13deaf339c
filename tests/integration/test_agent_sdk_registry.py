"""The agent SDK against the real registry service (in-process on port 0) and real Redis, over
each transport."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from hivewire.agent import Agent, TaskContext
from hivewire.core.wire import ENVELOPE_FIELD, RESULT_FIELD
from hivewire.v1 import agent_pb2, stream_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from tests.integration.agent_transports import transport_options
from tests.settings import StackSettings

registry_server = pytest.importorskip("hivewire_services.registry.server")


@pytest.fixture
async def registry_port(settings: StackSettings) -> AsyncIterator[int]:
    server = registry_server.RegistryServer(settings.registry())
    port = await server.start("127.0.0.1:0")
    yield port
    await server.shutdown()


async def test_agent_registers_runs_a_task_and_deregisters(
    registry_port: int, settings: StackSettings, redis: Redis, keys: Keys, transport: str
) -> None:
    async with transport_options(transport, settings, f"127.0.0.1:{registry_port}") as options:
        await registers_runs_and_deregisters(options, redis, keys)


async def registers_runs_and_deregisters(options: dict[str, Any], redis: Redis, keys: Keys) -> None:
    agent = Agent("real-registry", max_concurrency=3, labels={"zone": "a"}, **options)

    @agent.handler("echo")
    async def echo(ctx: TaskContext) -> Any:
        return ctx.json()

    async with agent:
        agent_id = agent.agent_id
        stored = await redis.hgetall(keys.agent(agent_id))
        assert stored[b"capabilities"] == b"echo"
        assert int(stored[b"state"]) == agent_pb2.AGENT_STATE_ONLINE
        envelope = stream_pb2.TaskEnvelope(
            task_id=uuid.uuid4().hex,
            attempt=1,
            attempt_token=uuid.uuid4().hex,
            capability="echo",
            payload=json.dumps([1, 2]).encode(),
            agent_id=agent_id,
        )
        await redis.xadd(keys.inbox(agent_id), {ENVELOPE_FIELD: envelope.SerializeToString()})
        reply = await redis.xread({keys.results: "0"}, block=10_000)
        result = stream_pb2.TaskResult.FromString(reply[0][1][0][1][RESULT_FIELD])
        assert result.outcome == stream_pb2.TASK_OUTCOME_SUCCEEDED
        assert json.loads(result.result) == [1, 2]
        assert result.attempt_token == envelope.attempt_token
    stored = await redis.hgetall(keys.agent(agent_id))
    assert int(stored[b"state"]) == agent_pb2.AGENT_STATE_OFFLINE


async def test_a_refused_registration_fails_start(
    registry_port: int, settings: StackSettings, transport: str
) -> None:
    async with transport_options(transport, settings, f"127.0.0.1:{registry_port}") as options:
        agent = Agent("refused", **options)
        agent.add_handler("Not A Capability", lambda ctx: None)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await agent.start()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "capabilities[0]" in (err.value.details() or "")
        assert agent.agent_id == ""
