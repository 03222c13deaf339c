"""Input limits through the real stack: refused before anything is written, and the services
stay responsive while they refuse."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import grpc
import pytest

from hivewire.v1 import (
    coordinator_pb2,
    coordinator_pb2_grpc,
    event_pb2,
    gateway_pb2_grpc,
    task_pb2,
    workflow_pb2,
)
from hivewire_services.common.errors import error_info, field_violations
from tests.integration.conftest import MakeStack
from tests.integration.stack import Stack
from tests.integration.store_snapshot import store_snapshot
from tests.integration.test_gateway_forwarding import rich_status

PAST_64_BITS = f"{2**64}-0"


def dense_dag(n: int = 500) -> workflow_pb2.SubmitWorkflowRequest:
    """Every step depends on every earlier one: 500 steps, 124,750 edges, about 700 KB."""
    return workflow_pb2.SubmitWorkflowRequest(
        name="dense",
        steps=[
            workflow_pb2.WorkflowStepSpec(
                step_id=f"s{i}", capability="echo", depends_on=[f"s{j}" for j in range(i)]
            )
            for i in range(n)
        ],
    )


class LoopLag:
    """The longest a timer due every millisecond waited past its time on the running loop (the
    in-process stack serves every RPC on this loop, so a blocked handler shows here)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def _tick(self) -> None:
        now = self._loop.time()
        self.worst = max(self.worst, now - self._due)
        self._due = now + 0.001
        self._handle = self._loop.call_at(self._due, self._tick)

    @contextmanager
    def watching(self) -> Iterator[LoopLag]:
        self.worst = 0.0
        self._due = self._loop.time()
        self._tick()
        try:
            yield self
        finally:
            assert self._handle is not None
            self._handle.cancel()


async def refuse_meanwhile(
    submit: Callable[..., Awaitable[object]],
    request: object,
    other_call: Callable[[], Awaitable[float]],
) -> tuple[grpc.aio.AioRpcError, float, list[float]]:
    """Send a request that must be refused while `other_call` runs back to back; the error,
    how long the refusal took, and how long each other call took."""
    refused = asyncio.Event()

    async def refuse() -> tuple[grpc.aio.AioRpcError, float]:
        start = time.perf_counter()
        try:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await submit(request, timeout=30)
        finally:
            refused.set()
        return info.value, time.perf_counter() - start

    async def meanwhile() -> list[float]:
        latencies = [await other_call()]
        while not refused.is_set():
            latencies.append(await other_call())
        return latencies

    (err, took), during = await asyncio.gather(refuse(), meanwhile())
    return err, took, during


def expect_refusal(err: grpc.aio.AioRpcError, reason: str, field: str) -> None:
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
    status = rich_status(err)
    info = error_info(status)
    assert info is not None and info.reason == reason, status
    assert field in [v.field for v in field_violations(status)], status


async def test_the_dense_dag_is_refused_at_once_and_other_calls_stay_fast(stack: Stack) -> None:
    [task] = await stack.submit("echo")
    dense = dense_dag()
    assert dense.ByteSize() > 700_000
    coordinator_envelope = coordinator_pb2.CoordinatorServiceSubmitWorkflowRequest(request=dense)
    redis, keys = stack.coordinator.redis, stack.coordinator.keys  # type: ignore[union-attr]
    before = await store_snapshot(redis, keys)
    lag = LoopLag()
    async with (
        grpc.aio.insecure_channel(stack.gateway_addr) as gateway_channel,
        grpc.aio.insecure_channel(stack.settings.coordinator_addr) as coordinator_channel,
    ):
        gateway = gateway_pb2_grpc.GatewayServiceStub(gateway_channel)
        coordinator = coordinator_pb2_grpc.CoordinatorServiceStub(coordinator_channel)
        get = task_pb2.GetTaskRequest(task_id=task.task_id)

        async def get_task() -> float:
            start = time.perf_counter()
            await gateway.GetTask(get, timeout=30)
            return time.perf_counter() - start

        # Baselines measured here, on this machine's load: GetTask, and refusing a request as
        # large as the dense DAG for a reason found without looking at its steps (it costs
        # the same to send and to parse).
        with lag.watching():
            baseline = [await get_task() for _ in range(20)]
        baseline_lag = lag.worst
        claimed = workflow_pb2.SubmitWorkflowRequest(command="x", steps=dense.steps)
        err, same_size, _ = await refuse_meanwhile(gateway.SubmitWorkflow, claimed, get_task)
        expect_refusal(err, "INVALID_ARGUMENT", "command")
        # Generous bounds: before the limits the dense DAG was planned for 3.2 s on the event
        # loop while every other call waited. Relative to this machine's load, with a floor of
        # 1 s (a shared two-core machine stalls the odd call for a few hundred ms).
        bound = max(10 * max(*baseline, same_size), 1.0)
        for submit, request in (
            (gateway.SubmitWorkflow, dense),
            (coordinator.SubmitWorkflow, coordinator_envelope),
        ):
            with lag.watching():
                err, took, during = await refuse_meanwhile(submit, request, get_task)
            expect_refusal(err, "WORKFLOW_TOO_LARGE", "steps")
            assert "124750 dependencies" in (err.details() or "")
            assert took < bound, (took, baseline, same_size)
            assert max(during) < bound, (during, baseline, same_size)
            assert lag.worst < max(bound, 10 * baseline_lag), (lag.worst, baseline_lag)
    assert await store_snapshot(redis, keys) == before


async def test_a_client_cannot_name_a_command(make_stack: MakeStack) -> None:
    stack = await make_stack(commands_dir="commands")
    redis, keys = stack.coordinator.redis, stack.coordinator.keys  # type: ignore[union-attr]
    before = await store_snapshot(redis, keys)
    claimed = workflow_pb2.SubmitWorkflowRequest(
        name="sneaky",
        command="analyze-text",
        steps=[workflow_pb2.WorkflowStepSpec(step_id="a", capability="echo")],
    )
    async with grpc.aio.insecure_channel(stack.gateway_addr) as channel:
        gateway = gateway_pb2_grpc.GatewayServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await gateway.SubmitWorkflow(claimed, timeout=10)
        expect_refusal(info.value, "INVALID_ARGUMENT", "command")
        assert await store_snapshot(redis, keys) == before
        # RunCommand still names the command it ran, from the catalog.
        wf = await stack.client.run_command("diamond", {})
        assert wf.command == "diamond"


@pytest.mark.parametrize(
    ("rpc", "request_", "field"),
    [
        ("ListDeadLetters", task_pb2.ListDeadLettersRequest(page_token=PAST_64_BITS), "page_token"),
        (
            "RetryDeadLetter",
            task_pb2.RetryDeadLetterRequest(dead_letter_id=f"0-{2**64}"),
            "dead_letter_id",
        ),
    ],
)
async def test_stream_ids_past_64_bits_name_the_field_on_both_services(
    stack: Stack, rpc: str, request_: object, field: str
) -> None:
    envelope = getattr(coordinator_pb2, f"CoordinatorService{rpc}Request")(request=request_)
    async with (
        grpc.aio.insecure_channel(stack.gateway_addr) as gateway_channel,
        grpc.aio.insecure_channel(stack.settings.coordinator_addr) as coordinator_channel,
    ):
        gateway = gateway_pb2_grpc.GatewayServiceStub(gateway_channel)
        coordinator = coordinator_pb2_grpc.CoordinatorServiceStub(coordinator_channel)
        for call, message in (
            (getattr(gateway, rpc), request_),
            (getattr(coordinator, rpc), envelope),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call(message, timeout=10)
            expect_refusal(info.value, "INVALID_ARGUMENT", field)
        # The edges of the id space Redis refuses in an exclusive range answer as empty.
        page = await gateway.ListDeadLetters(
            task_pb2.ListDeadLettersRequest(page_token="0-0"), timeout=10
        )
        assert list(page.dead_letters) == [] and page.next_page_token == ""


async def test_stream_cursors_past_64_bits_name_the_field(stack: Stack) -> None:
    [task] = await stack.submit("echo")
    async with grpc.aio.insecure_channel(stack.gateway_addr) as channel:
        gateway = gateway_pb2_grpc.GatewayServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in gateway.StreamEvents(
                event_pb2.StreamEventsRequest(since_cursor=PAST_64_BITS), timeout=10
            ):
                pass
        expect_refusal(info.value, "INVALID_ARGUMENT", "since_cursor")
        request = task_pb2.StreamTaskOutputRequest(task_id=task.task_id, after_cursor=PAST_64_BITS)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in gateway.StreamTaskOutput(request, timeout=10):
                pass
        expect_refusal(info.value, "INVALID_ARGUMENT", "after_cursor")
        # The last id there is: nothing follows it, so the stream is empty, not an error.
        top = 2**64 - 1
        last = event_pb2.StreamEventsRequest(
            since_cursor=f"{top}-{top}", heartbeat_interval={"seconds": 1}
        )
        async for frame in gateway.StreamEvents(last, timeout=10):
            assert frame.WhichOneof("frame") == "heartbeat"
            break
