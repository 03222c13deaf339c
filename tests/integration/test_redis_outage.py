"""Redis outages against a real stack: kill -9 and SIGSTOP a real redis-server, then bring it
back on the same port; services answer NOT_SERVING and UNAVAILABLE meanwhile, then recover."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.rpc import status_pb2
from grpc_status import rpc_status

from hivewire.cli.embedded_redis import EmbeddedRedis
from hivewire.client import Client
from hivewire.v1 import (
    agent_pb2,
    coordinator_pb2,
    coordinator_pb2_grpc,
    registry_pb2_grpc,
    task_pb2,
)
from hivewire_services.common.errors import error_info
from hivewire_services.coordinator.server import CoordinatorServer
from tests.integration.outage_stack import NOT_SERVING, SERVING, OutageStack, outage_stack
from tests.settings import stack_settings
from tests.up import refusing_addr
from tests.waiting import health, health_reaches

pytestmark = pytest.mark.timeout(180)

# Far above how long a refusal takes: reaching it would mean an RPC hung on Redis.
RPC_DEADLINE = 20.0
DOWN_FOR = 3.0
LONG_OUTAGE = 10.0  # longer than the agent lease (6 s)


@pytest.fixture
async def stack(tmp_path: Path, namespace: str) -> AsyncIterator[OutageStack]:
    async with outage_stack(tmp_path / "redis", namespace) as s:
        yield s


def reason(err: grpc.aio.AioRpcError) -> str:
    for key, value in err.trailing_metadata() or ():
        if key == rpc_status.GRPC_DETAILS_METADATA_KEY:
            info = error_info(status_pb2.Status.FromString(value))
            return info.reason if info else ""
    return ""


async def refused(stack: OutageStack) -> list[tuple[str, grpc.StatusCode, str]]:
    """Call one RPC of each service; every call must end, with the code and reason seen."""
    out = []
    calls = {
        "gateway": lambda ch: Client(stack.addrs["gateway"], timeout=RPC_DEADLINE).submit(
            "echo", {"x": 1}
        ),
        "coordinator": lambda ch: coordinator_pb2_grpc.CoordinatorServiceStub(ch).SubmitTask(
            coordinator_pb2.CoordinatorServiceSubmitTaskRequest(
                request=task_pb2.SubmitTaskRequest(capability="echo", payload=b"{}")
            ),
            timeout=RPC_DEADLINE,
        ),
        "registry": lambda ch: registry_pb2_grpc.RegistryServiceStub(ch).ListAgents(
            agent_pb2.ListAgentsRequest(), timeout=RPC_DEADLINE
        ),
    }
    for name, call in calls.items():
        async with grpc.aio.insecure_channel(stack.addrs[name]) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call(channel)
        out.append((name, err.value.code(), reason(err.value)))
    return out


async def run_tasks(stack: OutageStack, n: int) -> list[task_pb2.Task]:
    async with Client(stack.addrs["gateway"], timeout=RPC_DEADLINE) as client:
        tasks = await client.submit_many(
            [{"capability": "echo", "payload": {"n": i}} for i in range(n)]
        )
        return list(await asyncio.gather(*(client.wait(t.task_id, 60) for t in tasks)))


async def test_redis_killed_then_restarted(stack: OutageStack) -> None:
    agent_id = stack.agent.agent_id
    assert all(t.state == task_pb2.TASK_STATE_SUCCEEDED for t in await run_tasks(stack, 20))

    stack.kill_redis()
    await stack.wait_health(NOT_SERVING)
    for name, code, why in await refused(stack):
        assert code == grpc.StatusCode.UNAVAILABLE, name
        assert why == "REDIS_UNAVAILABLE", name
    await asyncio.sleep(LONG_OUTAGE)  # the outage under test: its length

    stack.restart_redis()
    await stack.wait_health(SERVING)
    done = await run_tasks(stack, 20)
    assert all(t.state == task_pb2.TASK_STATE_SUCCEEDED for t in done)
    # The same agent process kept its registration and did the work: no restart needed.
    assert stack.agent.agent_id == agent_id
    assert {t.agent_id for t in done} == {agent_id}


async def test_redis_frozen_then_thawed(stack: OutageStack) -> None:
    agent_id = stack.agent.agent_id
    assert all(t.state == task_pb2.TASK_STATE_SUCCEEDED for t in await run_tasks(stack, 5))

    stack.freeze_redis()
    # An RPC already waiting on the frozen Redis ends with UNAVAILABLE too, not a hang.
    async with Client(stack.addrs["gateway"], timeout=RPC_DEADLINE) as client:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await client.submit("echo", {"frozen": True}, request_id="frozen-1")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    await stack.wait_health(NOT_SERVING)
    for name, code, why in await refused(stack):
        assert (name, code, why) == (name, grpc.StatusCode.UNAVAILABLE, "REDIS_UNAVAILABLE")
    await asyncio.sleep(DOWN_FOR)  # the outage under test: its length

    stack.thaw_redis()
    await stack.wait_health(SERVING)
    async with Client(stack.addrs["gateway"], timeout=RPC_DEADLINE) as client:
        # The refused submission may or may not have reached Redis: its request_id says which.
        again = await client.submit("echo", {"frozen": True}, request_id="frozen-1")
        assert (await client.wait(again.task_id, 60)).state == task_pb2.TASK_STATE_SUCCEEDED
    done = await run_tasks(stack, 20)
    assert all(t.state == task_pb2.TASK_STATE_SUCCEEDED for t in done)
    assert {t.agent_id for t in done} == {agent_id} == {stack.agent.agent_id}


async def test_tasks_in_flight_survive_a_redis_restart(stack: OutageStack) -> None:
    async with Client(stack.addrs["gateway"], timeout=RPC_DEADLINE) as client:
        tasks = await client.submit_many(
            [{"capability": "echo", "payload": {"n": i}} for i in range(200)]
        )
    stack.kill_redis()
    await asyncio.sleep(DOWN_FOR)  # the outage under test: its length
    stack.restart_redis()
    await stack.wait_health(SERVING)
    async with Client(stack.addrs["gateway"], timeout=RPC_DEADLINE) as client:
        done = await asyncio.gather(*(client.wait(t.task_id, 90) for t in tasks))
    assert [t.state for t in done] == [task_pb2.TASK_STATE_SUCCEEDED] * len(tasks)


async def test_a_running_task_outlives_an_outage_longer_than_its_lease(
    stack: OutageStack,
) -> None:
    async with Client(stack.addrs["gateway"], timeout=RPC_DEADLINE) as client:
        task = await client.submit("sleep", {"secs": 12})
        await asyncio.wait_for(stack.sleeping.wait(), 30)
    stack.kill_redis()  # down longer than the 4 s attempt lease; the handler keeps running
    await asyncio.sleep(LONG_OUTAGE - 4)  # the outage under test: past the lease
    stack.restart_redis()
    await stack.wait_health(SERVING)
    async with Client(stack.addrs["gateway"], timeout=RPC_DEADLINE) as client:
        done = await client.wait(task.task_id, 60)
    # Heartbeats renewed the lease before any was judged: the first attempt finished the task.
    assert done.state == task_pb2.TASK_STATE_SUCCEEDED
    assert (done.attempt, stack.executions.count(task.task_id)) == (1, 1)


async def test_a_service_started_before_redis_serves_once_redis_arrives(
    tmp_path: Path, namespace: str
) -> None:
    redis = EmbeddedRedis(0, tmp_path / "late", appendonly=False)
    redis.start()  # only to get a port of its own: stopped, then started again on it below
    redis.stop()
    with refusing_addr() as registry_addr:
        await _serves_once_redis_arrives(redis, namespace, registry_addr)


async def _serves_once_redis_arrives(redis: EmbeddedRedis, namespace: str, registry: str) -> None:
    settings = stack_settings(
        redis_url=redis.url,
        namespace=namespace,
        registry_addr=registry,
        redis_probe_interval=0.25,
        redis_probe_timeout=0.5,
        shutdown_grace=1.0,
    )
    coordinator = CoordinatorServer(settings.coordinator())
    port = await coordinator.start("127.0.0.1:0")
    addr = f"127.0.0.1:{port}"
    try:
        assert await health(addr) == NOT_SERVING
        async with grpc.aio.insecure_channel(addr) as channel:
            stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.SubmitTask(submit_request(), timeout=RPC_DEADLINE)
            assert (err.value.code(), reason(err.value)) == (
                grpc.StatusCode.UNAVAILABLE,
                "REDIS_UNAVAILABLE",
            )
            redis.start()
            await health_reaches({"coordinator": addr}, SERVING)
            reply = await stub.SubmitTask(submit_request(), timeout=RPC_DEADLINE)
            assert reply.response.task.state == task_pb2.TASK_STATE_PENDING
    finally:
        await coordinator.shutdown()
        redis.stop()


def submit_request() -> coordinator_pb2.CoordinatorServiceSubmitTaskRequest:
    return coordinator_pb2.CoordinatorServiceSubmitTaskRequest(
        request=task_pb2.SubmitTaskRequest(capability="echo", payload=b"{}")
    )
