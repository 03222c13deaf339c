"""StreamEvents through a real gateway on port 0 against the real Redis events stream."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.rpc import status_pb2
from grpc_status import rpc_status

from hivewire.v1 import event_pb2, gateway_pb2_grpc
from hivewire_services.common.errors import error_info, field_violations
from hivewire_services.common.events import EVENT_FIELD
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.gateway.server import GatewayServer
from tests.settings import StackSettings
from tests.waiting import eventually

A = "aa" * 16
B = "bb" * 16
SUCCEEDED = event_pb2.EVENT_TYPE_TASK_SUCCEEDED
SUBMITTED = event_pb2.EVENT_TYPE_TASK_SUBMITTED


def rich_status(err: grpc.aio.AioRpcError) -> status_pb2.Status:
    for key, value in err.trailing_metadata() or ():
        if key == rpc_status.GRPC_DETAILS_METADATA_KEY:
            return status_pb2.Status.FromString(value)
    raise AssertionError(f"no rich status in {err!r}")


async def add(redis: Redis, keys: Keys, *events: event_pb2.Event) -> list[str]:
    """XADD events in one transaction (the hub sees them in one read); returns their ids."""
    pipe = redis.pipeline(transaction=True)
    for event in events:
        pipe.xadd(keys.events, {EVENT_FIELD: event.SerializeToString()})
    return [i.decode() for i in await pipe.execute()]


def ev(
    task_id: str = A, type_: event_pb2.EventType.ValueType = SUBMITTED, **fields: Any
) -> event_pb2.Event:
    return event_pb2.Event(type=type_, task_id=task_id, **fields)


async def take(call: Any, n: int) -> list[event_pb2.Event]:
    out = []
    for _ in range(n):
        reply = await asyncio.wait_for(call.read(), 5)
        assert reply is not grpc.aio.EOF
        out.append(reply.event)
    return out


async def subscribe(stub: Any, **fields: Any) -> Any:
    """Open a stream; headers arrive once the gateway has registered the subscriber."""
    call = stub.StreamEvents(event_pb2.StreamEventsRequest(**fields))
    await asyncio.wait_for(call.initial_metadata(), 5)
    return call


async def _stub(settings: StackSettings) -> AsyncIterator[gateway_pb2_grpc.GatewayServiceAsyncStub]:
    gateway = GatewayServer(settings.gateway())
    port = await gateway.start("127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield gateway_pb2_grpc.GatewayServiceStub(channel)  # type: ignore[misc]
    finally:
        await channel.close()
        await gateway.shutdown()


@pytest.fixture
async def stub(settings: StackSettings) -> AsyncIterator[gateway_pb2_grpc.GatewayServiceAsyncStub]:
    async for s in _stub(settings):
        yield s


async def test_live_events_are_filtered(stub: Any, redis: Redis, keys: Keys) -> None:
    everything = await subscribe(stub)
    only_a_succeeded = await subscribe(stub, task_id=A, types=[SUCCEEDED])
    by_capability = await subscribe(stub, capability="gpu", agent_id=B)
    ids = await add(
        redis,
        keys,
        ev(A, SUBMITTED, capability="gpu"),
        ev(B, SUCCEEDED, capability="gpu", agent_id=B),
        ev(A, SUCCEEDED, capability="cpu", agent_id=B),
        ev(A, SUCCEEDED, capability="gpu", agent_id=B, workflow_id=B),
    )
    assert [e.cursor for e in await take(everything, 4)] == ids
    assert [e.cursor for e in await take(only_a_succeeded, 2)] == ids[2:]
    got = await take(by_capability, 2)
    assert [e.cursor for e in got] == [ids[1], ids[3]]
    assert got[1].workflow_id == B
    # The narrow subscribers saw nothing else: the next matching event is the next one they read.
    more = await add(redis, keys, ev(B, SUBMITTED), ev(A, SUCCEEDED, capability="gpu", agent_id=B))
    assert [e.cursor for e in await take(only_a_succeeded, 1)] == [more[1]]
    assert [e.cursor for e in await take(by_capability, 1)] == [more[1]]
    for call in (everything, only_a_succeeded, by_capability):
        call.cancel()


async def test_resume_from_cursor_has_no_gap_or_duplicate(
    stub: Any, redis: Redis, keys: Keys
) -> None:
    history = await add(redis, keys, *[ev(message=str(i)) for i in range(10)])
    call = await subscribe(stub, since_cursor=history[3])
    live = await add(redis, keys, *[ev(message=f"live{i}") for i in range(5)])
    got = await take(call, 11)
    assert [e.cursor for e in got] == history[4:] + live
    assert [e.message for e in got[:2]] == ["4", "5"]
    later = await add(redis, keys, ev(message="later"))
    assert [e.cursor for e in await take(call, 1)] == later
    call.cancel()


async def test_resume_with_filter_skips_non_matching_history(
    stub: Any, redis: Redis, keys: Keys
) -> None:
    ids = await add(redis, keys, ev(A), ev(B), ev(A), ev(B), ev(A))
    call = await subscribe(stub, since_cursor=ids[0], task_id=B)
    assert [e.cursor for e in await take(call, 2)] == [ids[1], ids[3]]
    call.cancel()


async def test_trimmed_cursor_is_out_of_range(stub: Any, redis: Redis, keys: Keys) -> None:
    ids = await add(redis, keys, *[ev() for _ in range(5)])
    await redis.xtrim(keys.events, maxlen=2, approximate=False)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await take(stub.StreamEvents(event_pb2.StreamEventsRequest(since_cursor=ids[0])), 1)
    assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
    status = rich_status(info.value)
    details = error_info(status)
    assert details is not None
    assert details.reason == "CURSOR_TRIMMED"
    assert [v.field for v in field_violations(status)] == ["since_cursor"]
    # A cursor still inside the stream resumes normally.
    call = await subscribe(stub, since_cursor=ids[3])
    assert [e.cursor for e in await take(call, 1)] == ids[4:]
    call.cancel()


async def test_malformed_cursor_is_invalid_argument(stub: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await take(stub.StreamEvents(event_pb2.StreamEventsRequest(since_cursor="0")), 1)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in field_violations(rich_status(info.value))] == ["since_cursor"]


async def test_slow_subscriber_is_cut_off_and_others_keep_receiving(
    settings: StackSettings, redis: Redis, keys: Keys
) -> None:
    async for stub in _stub(dataclasses.replace(settings, stream_queue_size=4)):
        slow = await subscribe(stub)
        fast = await subscribe(stub, task_id=A)
        first = await add(redis, keys, ev(B), ev(B))
        assert [e.cursor for e in await take(slow, 2)] == first
        # The slow subscriber stops reading; a burst overflows its queue of 4.
        burst = await add(redis, keys, *[ev(B) for _ in range(10)], ev(A))
        assert [e.cursor for e in await take(fast, 1)] == burst[-1:]
        again = await add(redis, keys, ev(A))
        assert [e.cursor for e in await take(fast, 1)] == again

        with pytest.raises(grpc.aio.AioRpcError) as info:
            await take(slow, 20)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        details = error_info(rich_status(info.value))
        assert details is not None
        assert details.reason == "SUBSCRIBER_TOO_SLOW"
        assert details.metadata["cursor"] == first[-1]
        assert first[-1] in (info.value.details() or "")
        # Resuming from the reported cursor loses nothing.
        resumed = await subscribe(stub, since_cursor=details.metadata["cursor"])
        assert [e.cursor for e in await take(resumed, 12)] == burst + again
        resumed.cancel()
        fast.cancel()


async def test_shutdown_ends_streams_with_unavailable(settings: StackSettings) -> None:
    gateway = GatewayServer(settings.gateway())
    port = await gateway.start("127.0.0.1:0")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = await subscribe(gateway_pb2_grpc.GatewayServiceStub(channel))
        await gateway.shutdown()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await take(call, 1)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_cursor_before_the_first_entry_is_fine_when_nothing_was_trimmed(
    stub: Any, redis: Redis, keys: Keys
) -> None:
    ids = await add(redis, keys, ev(), ev(), ev())
    call = await subscribe(stub, since_cursor="0-1")
    assert [e.cursor for e in await take(call, 3)] == ids
    call.cancel()


async def test_subscribers_are_capped(settings: StackSettings) -> None:
    async for stub in _stub(dataclasses.replace(settings, stream_max_subscribers=2)):
        first, second = await subscribe(stub), await subscribe(stub)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await take(stub.StreamEvents(event_pb2.StreamEventsRequest()), 1)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        details = error_info(rich_status(info.value))
        assert details is not None and details.reason == "TOO_MANY_SUBSCRIBERS"
        first.cancel()
        # A slot freed is a slot to take.

        async def taken(stub: Any = stub) -> Any:
            try:
                return await subscribe(stub)
            except grpc.aio.AioRpcError:
                return None

        third = await eventually(taken, within=10, message="the freed slot taken")
        third.cancel()
        second.cancel()
