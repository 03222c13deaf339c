"""Gateway unary RPCs against a real grpc.aio coordinator/registry double on port 0."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.rpc import status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from hivewire.v1 import (
    agent_pb2,
    coordinator_pb2,
    coordinator_pb2_grpc,
    gateway_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    task_pb2,
)
from hivewire_services.common.errors import NotFound, error_info, field_violations, to_status
from hivewire_services.gateway.server import SERVICE_NAME, GatewayServer
from tests.settings import StackSettings
from tests.up import refusing_addr

MISSING = "f" * 32
TASK = "ab" * 16


def rich_status(err: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The google.rpc.Status carried in the grpc-status-details-bin trailer."""
    for key, value in err.trailing_metadata() or ():
        if key == rpc_status.GRPC_DETAILS_METADATA_KEY:
            return status_pb2.Status.FromString(value)
    raise AssertionError(f"no rich status in {err!r}")


class FakeCoordinator(coordinator_pb2_grpc.CoordinatorServiceServicer):
    """Records every request; returns a task, or NOT_FOUND with details for MISSING."""

    def __init__(self) -> None:
        self.received: list[Any] = []

    async def SubmitTask(  # noqa: N802
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        self.received.append(request)
        task = task_pb2.Task(task_id=TASK, capability=request.request.capability)
        return coordinator_pb2.CoordinatorServiceSubmitTaskResponse(
            response=task_pb2.SubmitTaskResponse(task=task)
        )

    async def SubmitTasks(  # noqa: N802
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        self.received.append(request)
        tasks = [
            task_pb2.Task(task_id=f"{i:032x}", capability=t.capability)
            for i, t in enumerate(request.request.tasks)
        ]
        return coordinator_pb2.CoordinatorServiceSubmitTasksResponse(
            response=task_pb2.SubmitTasksResponse(tasks=tasks)
        )

    async def GetTask(  # noqa: N802
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        self.received.append(request)
        if request.request.task_id == MISSING:
            status = rpc_status.to_status(
                to_status(NotFound("no such task", reason="TASK_NOT_FOUND", field="task_id"))
            )
            await context.abort(status.code, status.details, status.trailing_metadata)
        return coordinator_pb2.CoordinatorServiceGetTaskResponse(
            response=task_pb2.GetTaskResponse(task=task_pb2.Task(task_id=request.request.task_id))
        )

    async def ListTasks(  # noqa: N802
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        self.received.append(request)
        return coordinator_pb2.CoordinatorServiceListTasksResponse(
            response=task_pb2.ListTasksResponse(next_page_token="next")
        )

    async def CancelTask(  # noqa: N802
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        self.received.append(request)
        task = task_pb2.Task(task_id=request.request.task_id, state=task_pb2.TASK_STATE_CANCELLED)
        return coordinator_pb2.CoordinatorServiceCancelTaskResponse(
            response=task_pb2.CancelTaskResponse(task=task)
        )


class FakeRegistry(registry_pb2_grpc.RegistryServiceServicer):
    def __init__(self) -> None:
        self.received: list[Any] = []

    async def ListAgents(  # noqa: N802
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        self.received.append(request)
        agent = agent_pb2.Agent(agent_id=TASK, name="worker-1")
        return registry_pb2.RegistryServiceListAgentsResponse(
            response=agent_pb2.ListAgentsResponse(agents=[agent])
        )


@pytest.fixture
async def doubles() -> AsyncIterator[tuple[FakeCoordinator, FakeRegistry, int]]:
    coordinator, registry = FakeCoordinator(), FakeRegistry()  # type: ignore[abstract]
    server = grpc.aio.server()
    coordinator_pb2_grpc.add_CoordinatorServiceServicer_to_server(coordinator, server)
    registry_pb2_grpc.add_RegistryServiceServicer_to_server(registry, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield coordinator, registry, port
    await server.stop(None)


async def _gateway(
    settings: StackSettings,
) -> AsyncIterator[gateway_pb2_grpc.GatewayServiceAsyncStub]:
    gateway = GatewayServer(settings.gateway())
    port = await gateway.start("127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield gateway_pb2_grpc.GatewayServiceStub(channel)  # type: ignore[misc]
    finally:
        await channel.close()
        await gateway.shutdown()


@pytest.fixture
async def stub(
    settings: StackSettings, doubles: tuple[FakeCoordinator, FakeRegistry, int]
) -> AsyncIterator[gateway_pb2_grpc.GatewayServiceAsyncStub]:
    addr = f"127.0.0.1:{doubles[2]}"
    configured = dataclasses.replace(
        settings, coordinator_addr=addr, registry_addr=addr, max_payload_bytes=16, max_batch=5
    )
    async for s in _gateway(configured):
        yield s


async def test_unary_calls_are_forwarded_wrapped_and_unwrapped(
    stub: gateway_pb2_grpc.GatewayServiceAsyncStub,
    doubles: tuple[FakeCoordinator, FakeRegistry, int],
) -> None:
    coordinator, registry, _ = doubles
    submit = task_pb2.SubmitTaskRequest(capability="echo", payload=b"{}", request_id="r1")
    reply = await stub.SubmitTask(submit)
    assert reply.task.task_id == TASK
    assert reply.task.capability == "echo"
    batch = await stub.SubmitTasks(
        task_pb2.SubmitTasksRequest(tasks=[submit, task_pb2.SubmitTaskRequest(capability="b")])
    )
    assert [t.capability for t in batch.tasks] == ["echo", "b"]
    assert (await stub.GetTask(task_pb2.GetTaskRequest(task_id=TASK))).task.task_id == TASK
    listed = await stub.ListTasks(task_pb2.ListTasksRequest(page_size=5, capability="echo"))
    assert listed.next_page_token == "next"
    cancelled = await stub.CancelTask(task_pb2.CancelTaskRequest(task_id=TASK))
    assert cancelled.task.state == task_pb2.TASK_STATE_CANCELLED
    agents = await stub.ListAgents(agent_pb2.ListAgentsRequest(capability="echo"))
    assert [a.name for a in agents.agents] == ["worker-1"]

    assert [type(r).__name__ for r in coordinator.received] == [
        "CoordinatorServiceSubmitTaskRequest",
        "CoordinatorServiceSubmitTasksRequest",
        "CoordinatorServiceGetTaskRequest",
        "CoordinatorServiceListTasksRequest",
        "CoordinatorServiceCancelTaskRequest",
    ]
    forwarded = coordinator.received[0].request
    assert len(forwarded.traceparent) == 55  # the gateway names the task's trace (submits.py)
    forwarded.ClearField("traceparent")
    assert forwarded == submit
    assert len(coordinator.received[1].request.tasks) == 2
    assert coordinator.received[3].request.page_size == 5
    assert registry.received[0].request.capability == "echo"


async def test_coordinator_error_passes_through_with_details(
    stub: gateway_pb2_grpc.GatewayServiceAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetTask(task_pb2.GetTaskRequest(task_id=MISSING))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    status = rich_status(info.value)
    assert [v.field for v in field_violations(status)] == ["task_id"]
    details = error_info(status)
    assert details is not None
    assert details.reason == "TASK_NOT_FOUND"


@pytest.mark.parametrize(
    ("method", "request_", "code", "field"),
    [
        (
            "SubmitTask",
            task_pb2.SubmitTaskRequest(capability="echo", payload=b"x" * 17),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "payload",
        ),
        (
            "SubmitTasks",
            task_pb2.SubmitTasksRequest(
                tasks=[
                    task_pb2.SubmitTaskRequest(capability="echo"),
                    task_pb2.SubmitTaskRequest(capability="echo", payload=b"x" * 17),
                ]
            ),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "tasks[1].payload",
        ),
        (
            "SubmitTasks",
            task_pb2.SubmitTasksRequest(tasks=[task_pb2.SubmitTaskRequest(capability="e")] * 6),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "tasks",
        ),
        (
            "SubmitTasks",
            task_pb2.SubmitTasksRequest(),
            grpc.StatusCode.INVALID_ARGUMENT,
            "tasks",
        ),
        (
            "SubmitTask",
            task_pb2.SubmitTaskRequest(capability=""),
            grpc.StatusCode.INVALID_ARGUMENT,
            "capability",
        ),
        (
            "GetTask",
            task_pb2.GetTaskRequest(task_id="not-hex"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "task_id",
        ),
        (
            "CancelTask",
            task_pb2.CancelTaskRequest(task_id=TASK.upper()),
            grpc.StatusCode.INVALID_ARGUMENT,
            "task_id",
        ),
        (
            "ListAgents",
            agent_pb2.ListAgentsRequest(page_size=5000),
            grpc.StatusCode.INVALID_ARGUMENT,
            "page_size",
        ),
    ],
)
async def test_edge_validation_never_reaches_downstream(
    stub: gateway_pb2_grpc.GatewayServiceAsyncStub,
    doubles: tuple[FakeCoordinator, FakeRegistry, int],
    method: str,
    request_: Any,
    code: grpc.StatusCode,
    field: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await getattr(stub, method)(request_)
    assert info.value.code() == code
    assert [v.field for v in field_violations(rich_status(info.value))] == [field]
    assert doubles[0].received == []
    assert doubles[1].received == []


async def test_coordinator_down_is_unavailable(settings: StackSettings) -> None:
    with refusing_addr() as down:
        configured = dataclasses.replace(settings, coordinator_addr=down, registry_addr=down)
        await _down_is_unavailable(configured)


async def _down_is_unavailable(configured: StackSettings) -> None:
    async for stub in _gateway(configured):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.SubmitTask(task_pb2.SubmitTaskRequest(capability="echo"))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ListAgents(agent_pb2.ListAgentsRequest())
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_health_serves_then_stops_on_shutdown(settings: StackSettings) -> None:
    gateway = GatewayServer(settings.gateway())
    port = await gateway.start("127.0.0.1:0")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    await gateway.shutdown()
    await gateway.shutdown()  # idempotent
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=2
            )
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
