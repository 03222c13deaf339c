"""Fuzzing every public RPC of the gateway with Hypothesis against the in-process stack.

Each RPC of GatewayService, and AgentService.Connect's first message, gets random and malformed
requests (tests/integration/fuzz_messages.py). Every answer must be a documented status (never
UNKNOWN or INTERNAL), and a refused call must leave the store exactly as it was. The runs are
derandomized, so CI sees the same examples every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Coroutine
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings

from hivewire.v1 import agent_service_pb2, agent_service_pb2_grpc, gateway_pb2, gateway_pb2_grpc
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from tests.integration.conftest import MakeStack
from tests.integration.fuzz_messages import Pools, messages
from tests.integration.fuzz_messages import requests as fuzz_requests
from tests.integration.store_snapshot import store_snapshot
from tests.waiting import eventually

T = TypeVar("T")
Code = grpc.StatusCode
GATEWAY = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"]
CONNECT = agent_service_pb2.DESCRIPTOR.services_by_name["AgentService"].methods_by_name["Connect"]
# What docs/api.md says the gateway answers (OK included); never UNKNOWN or INTERNAL.
DOCUMENTED = frozenset(
    {
        Code.OK,
        Code.INVALID_ARGUMENT,
        Code.NOT_FOUND,
        Code.FAILED_PRECONDITION,
        Code.RESOURCE_EXHAUSTED,
        Code.OUT_OF_RANGE,
    }
)
# A stream that opened is ended by the test itself, after its first frame or a short wait.
FIRST_FRAME_S = 0.3
EXAMPLES = {
    "SubmitWorkflow": 80,
    "SubmitTasks": 60,
    "SubmitTask": 60,
    "RunCommand": 60,
    "StreamEvents": 80,
}
DEFAULT_EXAMPLES = 50


def fuzz_settings(examples: int) -> settings:
    return settings(
        derandomize=True,
        database=None,
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


class Target:
    """The stack under test, driven from Hypothesis' thread through the stack's own loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, redis: Redis, keys: Keys) -> None:
        self.loop = loop
        self.redis = redis
        self.keys = keys

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    async def settled_snapshot(self) -> dict[str, str]:
        """The store once the coordinators' event consumers caught up with earlier calls."""

        async def caught_up() -> bool:
            last = (await self.redis.xinfo_stream(self.keys.events))["last-generated-id"]
            groups = await self.redis.xinfo_groups(self.keys.events)
            return all(not g["pending"] and g["last-delivered-id"] == last for g in groups)

        await eventually(caught_up, message="event consumers catching up")
        return await store_snapshot(self.redis, self.keys)

    def check(self, rpc: str, call: Coroutine[Any, Any, Code]) -> None:
        """Run one call; its status must be documented, and a refusal must write nothing."""

        async def checked() -> None:
            before = await self.settled_snapshot()
            code = await call
            assert code in DOCUMENTED, f"{rpc} answered {code}"
            if code != Code.OK:
                after = await store_snapshot(self.redis, self.keys)
                assert after == before, f"{rpc} refused ({code.name}) but changed the store"

        self.run(checked())


async def unary(stub: Any, rpc: str, request: Message) -> Code:
    try:
        await getattr(stub, rpc)(request, timeout=30)
    except grpc.aio.AioRpcError as err:
        return err.code()
    return Code.OK


async def first_frame(stub: Any, rpc: str, request: Message) -> Code:
    """A server stream's status at its start: OK once it sends a frame (or stays open)."""
    call = getattr(stub, rpc)(request, timeout=30)
    try:
        async with asyncio.timeout(FIRST_FRAME_S):
            await call.read()
    except TimeoutError:
        return Code.OK  # open and waiting: accepted
    except grpc.aio.AioRpcError as err:
        return err.code()
    finally:
        call.cancel()
    return Code.OK


async def connect(stub: agent_service_pb2_grpc.AgentServiceStub, first: Message) -> Code:
    call = stub.Connect(timeout=30)
    try:
        with contextlib.suppress(grpc.aio.AioRpcError):  # a refusal comes with the read
            await call.write(first)
        reply = await call.read()
    except grpc.aio.AioRpcError as err:
        return err.code()
    finally:
        call.cancel()
    assert reply is not grpc.aio.EOF and reply.WhichOneof("message") == "welcome", reply
    return Code.OK


@pytest.mark.parametrize("rpc", [m.name for m in GATEWAY.methods] + ["AgentService.Connect"])
async def test_fuzzed_requests_get_documented_answers_and_refusals_write_nothing(
    make_stack: MakeStack, rpc: str
) -> None:
    # Nothing due in the background while examples run (leases, deadlines and sweeps are not
    # what is fuzzed here), so a refused call is the only thing that could change the store.
    stack = await make_stack(
        lease_seconds=3600.0,
        task_lease_seconds=3600.0,
        reclaim_interval=3600.0,
        workflow_sweep_interval=3600.0,
        commands_dir="commands",
    )
    coordinator = stack.coordinator
    assert coordinator is not None
    [task] = await stack.submit("echo")
    workflow = await stack.client.submit_workflow([{"id": "a", "capability": "echo"}])
    pools = Pools(task_ids=[task.task_id], workflow_ids=[workflow.workflow_id])
    if rpc == "AgentService.Connect":  # agents that can never take the pending echo tasks
        pools = dataclasses.replace(pools, capabilities=("fuzz-agent", "fuzz.b"))
    target = Target(asyncio.get_running_loop(), coordinator.redis, coordinator.keys)
    channel = grpc.aio.insecure_channel(stack.gateway_addr)
    try:
        if rpc == "AgentService.Connect":
            agents = agent_service_pb2_grpc.AgentServiceStub(channel)
            requests = fuzz_requests(CONNECT.input_type, pools)

            def call(request: Message) -> Coroutine[Any, Any, Code]:
                return connect(agents, request)

        else:
            method = GATEWAY.methods_by_name[rpc]
            gateway = gateway_pb2_grpc.GatewayServiceStub(channel)
            requests = fuzz_requests(method.input_type, pools)

            def call(request: Message) -> Coroutine[Any, Any, Code]:
                if method.server_streaming:
                    return first_frame(gateway, rpc, request)
                return unary(gateway, rpc, request)

        @fuzz_settings(EXAMPLES.get(rpc, DEFAULT_EXAMPLES))
        @given(request=requests)
        def fuzz(request: Message) -> None:
            target.check(rpc, call(request))

        await asyncio.to_thread(fuzz)
    finally:
        await channel.close()


def test_the_strategies_reach_past_the_first_check() -> None:
    """Sanity of the generator: it makes the pool's ids, other well-formed ids and junk."""
    seen: set[str] = set()
    task = "ab" * 16

    @fuzz_settings(200)
    @given(req=messages(GATEWAY.methods_by_name["GetTask"].input_type, Pools([task])))
    def sample(req: Any) -> None:
        seen.add(req.task_id)

    sample()
    assert task in seen and "" in seen
    assert any(len(s) == 32 and s != task for s in seen)
    assert any(len(s) != 32 for s in seen)
