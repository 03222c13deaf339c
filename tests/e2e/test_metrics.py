"""Metrics of the real stack: every service's /metrics after a known run."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest

from hivewire.client import Client
from hivewire.core.addr_file import METRICS, read_addr_file
from hivewire.core.metrics_server import ANY_PORT
from hivewire.core.wire import RESULTS_GROUP
from hivewire.v1 import task_pb2
from tests.e2e import traced_stack as fixtures
from tests.e2e.conftest import Stack
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

collector = fixtures.collector
traced_stack = fixtures.traced_stack


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(addr: str) -> Samples:
    """Samples of one /metrics endpoint as {(name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_match_a_known_run(traced_stack: Stack) -> None:
    co, gw, reg = (traced_stack.metrics[k] for k in ("coordinator", "gateway", "registry"))
    before = await asyncio.to_thread(scrape, co)
    gw_before = await asyncio.to_thread(scrape, gw)
    async with Client(traced_stack.gateway) as client:
        submitted = [await client.submit("echo", {"n": i}) for i in range(4)]
        submitted.append(await client.submit("fail", None, max_attempts=2))
        done = await asyncio.gather(*(client.wait(t.task_id, timeout=60) for t in submitted))
        assert [t.state for t in done] == [task_pb2.TASK_STATE_SUCCEEDED] * 4 + [
            task_pb2.TASK_STATE_FAILED
        ]
        events = client.events(capability="echo")
        reader = asyncio.ensure_future(events.__anext__())
        try:
            expected = {
                ("hivewire_tasks_submitted_total", "echo"): 4,
                ("hivewire_tasks_succeeded_total", "echo"): 4,
                ("hivewire_tasks_submitted_total", "fail"): 1,
                ("hivewire_tasks_retried_total", "fail"): 1,
                ("hivewire_tasks_failed_total", "fail"): 1,
                ("hivewire_tasks_dead_lettered_total", "fail"): 1,
                ("hivewire_tasks_failed_total", "echo"): 0,
                ("hivewire_task_assignment_latency_seconds_count", "echo"): 4,
            }

            async def counted() -> Samples:
                after = await asyncio.to_thread(scrape, co)
                got = {
                    key: value(after, key[0], capability=key[1])
                    - value(before, key[0], capability=key[1])
                    for key in expected
                }
                assert got == expected
                return after

            after = await eventually(counted, within=30, interval=0.2, message="the task counters")
            e2e = "hivewire_task_end_to_end_latency_seconds_count"
            assert (
                value(after, e2e, capability="echo", state="SUCCEEDED")
                - value(before, e2e, capability="echo", state="SUCCEEDED")
                == 4
            )
            assert value(after, "hivewire_redis_up") == 1
            assert ("hivewire_queue_depth", (("capability", "echo"),)) in after
            assert value(after, "hivewire_queue_depth", capability="echo") == 0
            assert value(after, "hivewire_stream_length", stream="events") > 0
            pending = ("group", RESULTS_GROUP), ("stream", "results")
            assert ("hivewire_stream_pending", pending) in after
            assert any(
                k[0] == "hivewire_stream_lag" and ("group", "metrics") in k[1] for k in after
            )
            agents = await asyncio.to_thread(scrape, reg)
            assert value(agents, "hivewire_agents", state="ONLINE") == 2
            gw_after = await asyncio.to_thread(scrape, gw)
            rpc = "hivewire_rpc_duration_seconds_count"
            method = "hivewire.v1.GatewayService/SubmitTask"
            assert (
                value(gw_after, rpc, method=method, code="OK")
                - value(gw_before, rpc, method=method, code="OK")
                == 5
            )

            async def subscribed() -> Samples:
                samples = await asyncio.to_thread(scrape, gw)
                assert value(samples, "hivewire_dashboard_subscribers") == 1
                return samples

            gw_after = await eventually(
                subscribed, within=30, interval=0.2, message="the subscriber count"
            )
            assert ("hivewire_dashboard_overflows_total", ()) in gw_after
            # Errors are measured under their status code, on both hops. An aborted RPC's status
            # reaches the caller before the server-side observation, so poll for it.
            gw_get = "hivewire.v1.GatewayService/GetTask"
            co_get = "hivewire.v1.CoordinatorService/GetTask"
            gw_base = value(gw_after, rpc, method=gw_get, code="NOT_FOUND")
            co_base = value(
                await asyncio.to_thread(scrape, co), rpc, method=co_get, code="NOT_FOUND"
            )
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await client.get("0" * 32)
            assert err.value.code() == grpc.StatusCode.NOT_FOUND

            async def errors_counted() -> bool:
                gw_err = await asyncio.to_thread(scrape, gw)
                co_err = await asyncio.to_thread(scrape, co)
                got_errors = (
                    value(gw_err, rpc, method=gw_get, code="NOT_FOUND") - gw_base,
                    value(co_err, rpc, method=co_get, code="NOT_FOUND") - co_base,
                )
                assert got_errors == (1, 1)
                return True

            await eventually(
                errors_counted, within=30, interval=0.2, message="NOT_FOUND on both hops"
            )
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await reader
            await events.aclose()


async def test_agent_metrics_count_its_own_attempts(traced_stack: Stack, tmp_path: Path) -> None:
    addr_file = tmp_path / "agent.addr"
    env = {
        **traced_stack.env(),
        "HIVEWIRE_AGENT_METRICS_PORT": str(ANY_PORT),
        "HIVEWIRE_ADDR_FILE": str(addr_file),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hivewire.cli", "agent", "tests.e2e.probe_agent:agent",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with Client(traced_stack.gateway) as client:

            async def registered() -> bool:
                return "probe" in {a.name for a in (await client.list_agents())[0]}

            await eventually(registered, within=60, message="the probe agent registered")
            tasks = [await client.submit("probe", {"n": i}) for i in range(3)]
            for task in tasks:
                done = await client.wait(task.task_id, timeout=60)
                assert done.state == task_pb2.TASK_STATE_SUCCEEDED
        metrics = read_addr_file(addr_file, METRICS)
        assert metrics is not None, "the agent reported no /metrics address"
        got = await asyncio.to_thread(scrape, metrics)
        ok = {"capability": "probe", "outcome": "SUCCEEDED"}
        assert value(got, "hivewire_agent_tasks_total", **ok) == 3
        assert value(got, "hivewire_agent_task_duration_seconds_count", capability="probe") == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
