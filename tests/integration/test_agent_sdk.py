"""The agent SDK against a real redis-server and a real grpc.aio registry test double on port 0,
over each transport (grpc: a real gateway in front of the double)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from hivewire.agent import Agent, NonRetryableError, TaskContext
from hivewire.core.wire import ENVELOPE_FIELD, INBOX_GROUP, RESULT_FIELD
from hivewire.v1 import agent_pb2, registry_pb2, registry_pb2_grpc, stream_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.server import GrpcServer, create_server
from tests.integration.agent_transports import transport_options
from tests.settings import StackSettings
from tests.waiting import eventually

LEASE_SECONDS = 3


class RegistryDouble(registry_pb2_grpc.RegistryServiceServicer):
    """Registers agents into the test's Redis namespace; can be told to forget agents."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.tokens: dict[str, str] = {}
        self.heartbeats: list[registry_pb2.SendHeartbeatRequest] = []
        self.deregistered: list[str] = []
        self.registered: list[registry_pb2.RegisterAgentRequest] = []

    async def RegisterAgent(  # noqa: N802 - gRPC method name
        self, request: registry_pb2.RegisterAgentRequest, context: Any
    ) -> registry_pb2.RegisterAgentResponse:
        agent_id = uuid.uuid4().hex
        token = uuid.uuid4().hex
        self.tokens[agent_id] = token
        self.registered.append(request)
        inbox = self.keys.inbox(agent_id)
        await self.redis.xgroup_create(inbox, INBOX_GROUP, id="$", mkstream=True)
        resp = registry_pb2.RegisterAgentResponse(
            agent=agent_pb2.Agent(agent_id=agent_id, name=request.name),
            agent_token=token,
            inbox_stream=inbox,
            inbox_group=INBOX_GROUP,
            results_stream=self.keys.results,
        )
        resp.lease_duration.FromSeconds(LEASE_SECONDS)
        return resp

    async def SendHeartbeat(  # noqa: N802 - gRPC method name
        self,
        request: registry_pb2.SendHeartbeatRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> registry_pb2.SendHeartbeatResponse:
        if self.tokens.get(request.agent_id) != request.agent_token:
            await context.abort(grpc.StatusCode.NOT_FOUND, "agent not found")
        self.heartbeats.append(request)
        return registry_pb2.SendHeartbeatResponse()

    async def DeregisterAgent(  # noqa: N802 - gRPC method name
        self, request: registry_pb2.DeregisterAgentRequest, context: Any
    ) -> registry_pb2.DeregisterAgentResponse:
        self.deregistered.append(request.agent_id)
        self.tokens.pop(request.agent_id, None)
        return registry_pb2.DeregisterAgentResponse()


@pytest.fixture
async def registry(
    redis: Redis, keys: Keys, settings: StackSettings
) -> AsyncIterator[tuple[RegistryDouble, GrpcServer]]:
    double = RegistryDouble(redis, keys)
    server = await create_server(
        "127.0.0.1:0",
        lambda s: registry_pb2_grpc.add_RegistryServiceServicer_to_server(double, s),
        ["hivewire.v1.RegistryService"],
        settings,
    )
    yield double, server
    await server.stop(0)


AgentFactory = Callable[..., Awaitable[Agent]]


@pytest.fixture
async def make_agent(
    registry: tuple[RegistryDouble, GrpcServer], settings: StackSettings, transport: str
) -> AsyncIterator[AgentFactory]:
    agents: list[Agent] = []
    registry_addr = f"127.0.0.1:{registry[1].port}"
    async with transport_options(transport, settings, registry_addr) as options:

        async def make(setup: Callable[[Agent], None], **kwargs: Any) -> Agent:
            agent = Agent("test-agent", **options, **kwargs)
            setup(agent)
            await agent.start()
            agents.append(agent)
            return agent

        yield make
        for agent in agents:
            await agent.stop(grace=5)


async def deliver(redis: Redis, keys: Keys, agent: Agent, capability: str, payload: object) -> str:
    """XADD an envelope into the agent's current inbox, as the coordinator would."""
    task_id = uuid.uuid4().hex
    envelope = stream_pb2.TaskEnvelope(
        task_id=task_id,
        attempt=1,
        attempt_token=uuid.uuid4().hex,
        capability=capability,
        payload=json.dumps(payload).encode(),
        agent_id=agent.agent_id,
    )
    await redis.xadd(keys.inbox(agent.agent_id), {ENVELOPE_FIELD: envelope.SerializeToString()})
    return task_id


async def results_until(
    redis: Redis, keys: Keys, done: Callable[[list[stream_pb2.TaskResult]], bool]
) -> list[stream_pb2.TaskResult]:
    """Read the results stream from the start until `done` holds."""

    async def read() -> list[stream_pb2.TaskResult]:
        entries = await redis.xrange(keys.results)
        results = [stream_pb2.TaskResult.FromString(f[RESULT_FIELD]) for _, f in entries]
        assert done(results), results
        return results

    return await eventually(read, message="the results")


def finals(results: list[stream_pb2.TaskResult]) -> list[stream_pb2.TaskResult]:
    return [r for r in results if r.outcome != stream_pb2.TASK_OUTCOME_STARTED]


def echo_setup(agent: Agent) -> None:
    @agent.handler("echo")
    async def echo(ctx: TaskContext) -> Any:
        return ctx.json()

    @agent.handler("sync-upper")
    def upper(ctx: TaskContext) -> str:
        return str(ctx.json()).upper()

    @agent.handler("sleep")
    async def sleep(ctx: TaskContext) -> dict[str, float]:
        await asyncio.sleep(ctx.json()["seconds"])  # the work: as long as the test asks
        return {"slept": ctx.json()["seconds"]}

    @agent.handler("broken")
    async def broken(ctx: TaskContext) -> None:
        raise ValueError("bad input")

    @agent.handler("fatal")
    async def fatal(ctx: TaskContext) -> None:
        raise NonRetryableError("never works")


async def test_result_is_written_then_acked(
    make_agent: AgentFactory, redis: Redis, keys: Keys
) -> None:
    agent = await make_agent(echo_setup)
    task_id = await deliver(redis, keys, agent, "echo", {"hello": "world"})
    results = await results_until(redis, keys, lambda rs: len(finals(rs)) == 1)
    result = finals(results)[0]
    assert result.task_id == task_id
    assert result.outcome == stream_pb2.TASK_OUTCOME_SUCCEEDED
    assert json.loads(result.result) == {"hello": "world"}
    assert result.agent_id == agent.agent_id and result.attempt == 1
    assert result.HasField("start_time") and result.HasField("end_time")
    pending = await redis.xpending(keys.inbox(agent.agent_id), INBOX_GROUP)
    assert pending["pending"] == 0


async def test_sync_handler_and_failures(
    make_agent: AgentFactory, redis: Redis, keys: Keys
) -> None:
    agent = await make_agent(echo_setup)
    ids = {
        await deliver(redis, keys, agent, "sync-upper", "abc"): "sync",
        await deliver(redis, keys, agent, "broken", {}): "broken",
        await deliver(redis, keys, agent, "fatal", {}): "fatal",
        await deliver(redis, keys, agent, "nope", {}): "unknown",
    }
    results = await results_until(redis, keys, lambda rs: len(finals(rs)) == 4)
    by_kind = {ids[r.task_id]: r for r in finals(results)}
    assert by_kind["sync"].result == b"ABC"
    assert by_kind["broken"].outcome == stream_pb2.TASK_OUTCOME_FAILED
    assert by_kind["broken"].error == "ValueError: bad input"
    assert by_kind["fatal"].outcome == stream_pb2.TASK_OUTCOME_FAILED_PERMANENTLY
    assert by_kind["unknown"].outcome == stream_pb2.TASK_OUTCOME_FAILED_PERMANENTLY


async def test_concurrency_is_bounded(make_agent: AgentFactory, redis: Redis, keys: Keys) -> None:
    state = {"now": 0, "peak": 0}

    def setup(agent: Agent) -> None:
        @agent.handler("sleep")
        async def sleep(ctx: TaskContext) -> None:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
            await asyncio.sleep(0.1)  # work that overlaps: the bound is under test
            state["now"] -= 1

    agent = await make_agent(setup, max_concurrency=2, running_report_after=10)
    for _ in range(5):
        await deliver(redis, keys, agent, "sleep", {})
    results = await results_until(redis, keys, lambda rs: len(finals(rs)) == 5)
    assert all(r.outcome == stream_pb2.TASK_OUTCOME_SUCCEEDED for r in results)
    assert state["peak"] == 2


async def test_slow_task_reports_started_first(
    make_agent: AgentFactory, redis: Redis, keys: Keys
) -> None:
    agent = await make_agent(echo_setup, running_report_after=0.01)
    fast = await deliver(redis, keys, agent, "echo", 1)
    slow = await deliver(redis, keys, agent, "sleep", {"seconds": 0.3})
    results = await results_until(redis, keys, lambda rs: len(finals(rs)) == 2)
    slow_outcomes = [r.outcome for r in results if r.task_id == slow]
    assert slow_outcomes == [stream_pb2.TASK_OUTCOME_STARTED, stream_pb2.TASK_OUTCOME_SUCCEEDED]
    assert [r.outcome for r in results if r.task_id == fast] == [stream_pb2.TASK_OUTCOME_SUCCEEDED]


async def test_stop_drains_in_flight_work_and_deregisters(
    make_agent: AgentFactory,
    registry: tuple[RegistryDouble, GrpcServer],
    redis: Redis,
    keys: Keys,
) -> None:
    agent = await make_agent(echo_setup, running_report_after=0.01)
    agent_id = agent.agent_id
    task_id = await deliver(redis, keys, agent, "sleep", {"seconds": 0.5})
    await results_until(redis, keys, lambda rs: any(r.task_id == task_id for r in rs))
    await agent.stop()
    results = finals(await redis_results(redis, keys))
    assert [r.task_id for r in results] == [task_id]
    assert results[0].outcome == stream_pb2.TASK_OUTCOME_SUCCEEDED
    assert any(hb.draining and hb.agent_id == agent_id for hb in registry[0].heartbeats)
    assert registry[0].deregistered == [agent_id]


async def test_lost_lease_reregisters_and_keeps_working(
    make_agent: AgentFactory,
    registry: tuple[RegistryDouble, GrpcServer],
    redis: Redis,
    keys: Keys,
) -> None:
    agent = await make_agent(echo_setup)
    old_id = agent.agent_id
    registry[0].tokens.clear()  # the registry forgot the agent: next heartbeat gets NOT_FOUND
    await eventually(lambda: agent.agent_id != old_id, message="a new registration")
    assert len(registry[0].registered) == 2
    task_id = await deliver(redis, keys, agent, "echo", "again")
    results = await results_until(redis, keys, lambda rs: len(finals(rs)) == 1)
    assert results[0].task_id == task_id and results[0].agent_id == agent.agent_id


async def redis_results(redis: Redis, keys: Keys) -> list[stream_pb2.TaskResult]:
    return [
        stream_pb2.TaskResult.FromString(f[RESULT_FIELD])
        for _, f in await redis.xrange(keys.results)
    ]
