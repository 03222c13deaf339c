"""Redis kill -9 under a stream of submissions, restarted from the same AOF directory:
with `appendfsync always` no acknowledged submission is lost; with `everysec` any loss must
lie in the documented window (the last second or two before the crash)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest

from hivewire.cli.embedded_redis import EmbeddedRedis
from hivewire.v1 import coordinator_pb2, coordinator_pb2_grpc, task_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import create_redis
from hivewire_services.coordinator.server import CoordinatorServer
from tests.settings import stack_settings
from tests.waiting import eventually

pytestmark = pytest.mark.timeout(180)

BATCH = 50
SUBMITTERS = 4
KILL_AFTER = 1500  # acknowledged tasks before Redis is killed
EVERYSEC_WINDOW = 2.5  # seconds: Redis fsyncs each second and may postpone a write by up to 2 s


async def submit_until(
    stub: coordinator_pb2_grpc.CoordinatorServiceStub,
    acked: list[tuple[str, float]],
    refused: Counter[int],
    me: int,
    enough: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    """Submit batches until `stop`; record every acknowledged task with its ack time, and
    count the refusals of submitter `me`."""
    while not stop.is_set():
        req = task_pb2.SubmitTasksRequest(
            tasks=[task_pb2.SubmitTaskRequest(capability="durable", payload=b"{}")] * BATCH
        )
        try:
            resp = await stub.SubmitTasks(
                coordinator_pb2.CoordinatorServiceSubmitTasksRequest(request=req), timeout=10
            )
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
            refused[me] += 1
            await asyncio.sleep(0.05)  # pacing: retry a refused batch without spinning
            continue
        now = time.monotonic()
        acked.extend((t.task_id, now) for t in resp.response.tasks)
        if len(acked) >= KILL_AFTER:
            enough.set()


@pytest.mark.parametrize("fsync", ["always", "everysec"])
async def test_acknowledged_submissions_survive_redis_kill9(
    tmp_path: Path, namespace: str, fsync: str, refused_addr: str
) -> None:
    redis = EmbeddedRedis(0, tmp_path / "redis", appendonly=True, appendfsync=fsync)
    redis.start()
    settings = stack_settings(
        redis_url=redis.url,
        namespace=namespace,
        registry_addr=refused_addr,  # no agents needed: tasks stay queued
        redis_probe_interval=0.25,
        redis_probe_timeout=0.5,
        shutdown_grace=1.0,
    )
    coordinator = CoordinatorServer(settings.coordinator())
    port = await coordinator.start("127.0.0.1:0")
    acked: list[tuple[str, float]] = []
    refused: Counter[int] = Counter()
    enough, stop = asyncio.Event(), asyncio.Event()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)
            submitters = [
                asyncio.create_task(submit_until(stub, acked, refused, i, enough, stop))
                for i in range(SUBMITTERS)
            ]
            await asyncio.wait_for(enough.wait(), 60)
            redis.kill()  # kill -9 with submissions in flight
            killed_at = time.monotonic()
            await eventually(
                lambda: len(refused) == SUBMITTERS, within=30, message="every submitter refused"
            )
            stop.set()
            await asyncio.gather(*submitters)
        redis.start()  # same port, same AOF directory
        keys = Keys(namespace)
        client = create_redis(redis.url)
        try:
            async with client.pipeline(transaction=False) as pipe:
                for task_id, _ in acked:
                    pipe.hget(keys.task(task_id), "state")
                    pipe.zscore(keys.pending("durable"), task_id)
                rows = await pipe.execute()
        finally:
            await client.aclose()
    finally:
        await coordinator.shutdown()
        redis.stop()
    lost = [
        (task_id, killed_at - at)
        for (task_id, at), state, queued in zip(acked, rows[::2], rows[1::2], strict=True)
        if state is None or int(state) != task_pb2.TASK_STATE_PENDING or queued is None
    ]
    print(
        f"appendfsync {fsync}: {len(acked)} acknowledged, {len(lost)} lost, "
        f"{refused.total()} refused"
    )
    if fsync == "always":
        assert lost == []
    else:
        assert all(age <= EVERYSEC_WINDOW for _, age in lost), lost[:5]
