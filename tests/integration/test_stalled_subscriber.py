"""Ten subscribers, one never reads: it is cut off while the nine others keep up."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import grpc

from hivewire.v1 import event_pb2, gateway_pb2_grpc
from hivewire_services.common.errors import error_info
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.gateway.server import GatewayServer
from tests.integration.test_gateway_events import add, ev, rich_status
from tests.settings import StackSettings
from tests.waiting import eventually

BATCHES, PER_BATCH = 100, 20
# How far a reader may fall behind before it is cut off. The writer never runs more than one
# batch ahead of the slowest healthy reader (see `caught_up`), so a healthy reader holds at most
# two batches (40 events) however slowly a loaded machine runs this process; the stalled
# subscriber, which reads nothing, overflows (its queue plus the 64 KiB HTTP/2 window hold
# about 500 of the 2,000 events).
QUEUE_SIZE = 256


async def test_stalled_subscriber_is_cut_off_while_nine_keep_receiving(
    settings: StackSettings, redis: Redis, keys: Keys
) -> None:
    gateway = GatewayServer(dataclasses.replace(settings, stream_queue_size=QUEUE_SIZE).gateway())
    port = await gateway.start("127.0.0.1:0")
    # Without BDP probing the HTTP/2 window stays at 64 KiB, so a reader that stops reading
    # stalls its stream soon (the window, not the gateway, would otherwise buffer megabytes).
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.http2.bdp_probe", 0)])
    stub: Any = gateway_pb2_grpc.GatewayServiceStub(channel)
    try:
        calls = [stub.StreamEvents(event_pb2.StreamEventsRequest()) for _ in range(10)]
        for call in calls:
            await asyncio.wait_for(call.initial_metadata(), 10)
        stalled, readers = calls[0], calls[1:]
        arrivals: list[set[str]] = [set() for _ in readers]
        total = BATCHES * PER_BATCH
        arrived = asyncio.Condition()

        async def read(call: Any, seen: set[str]) -> list[str]:
            got = []
            while len(got) < total:
                frame = await call.read()
                assert frame is not grpc.aio.EOF
                got.append(frame.event.cursor)
                seen.add(frame.event.cursor)
                async with arrived:
                    arrived.notify_all()
            return got

        async def caught_up(cursor: str) -> None:
            """Until every healthy reader has `cursor`: if the stalled subscriber held the
            others back, this would wait out the 30 s and fail."""
            async with asyncio.timeout(30), arrived:
                await arrived.wait_for(lambda: all(cursor in seen for seen in arrivals))

        reading = [asyncio.create_task(read(c, a)) for c, a in zip(readers, arrivals, strict=True)]
        written: list[list[str]] = []
        for batch in range(BATCHES):
            ids = await add(
                redis, keys, *[ev(message=f"{batch}-{i}-" + "x" * 200) for i in range(PER_BATCH)]
            )
            written.append(ids)
            if len(written) > 1:  # one batch in flight at most: live traffic, never a flood
                await caught_up(written[-2][-1])
        results = await asyncio.wait_for(asyncio.gather(*reading), 60)
        every_id = [i for ids in written for i in ids]
        for got in results:
            assert got == every_id  # all of them, in order, none twice
        assert gateway.hub is not None
        await eventually(lambda: gateway.hub is not None and gateway.hub.subscriber_count == 9)

        # The stalled one, reading at last, gets what was buffered, then RESOURCE_EXHAUSTED.
        delivered: list[str] = []
        try:
            async with asyncio.timeout(30):
                while True:
                    frame = await stalled.read()
                    assert frame is not grpc.aio.EOF
                    delivered.append(frame.event.cursor)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            info = error_info(rich_status(exc))
            assert info is not None and info.reason == "SUBSCRIBER_TOO_SLOW"
            assert delivered == every_id[: len(delivered)]
            assert len(delivered) < total
            if delivered:
                assert info.metadata["cursor"] == delivered[-1]
        else:
            raise AssertionError("the stalled subscriber was never cut off")
        for call in readers:
            call.cancel()
    finally:
        await channel.close()
        await gateway.shutdown()
