"""End to end: tasks through `hivewire up --demo`, the CLI, health, reflection, bad input."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from hivewire.client import Client
from hivewire.v1 import gateway_pb2_grpc, task_pb2
from hivewire_services.common.errors import error_info, field_violations
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

N_TASKS = 500


async def test_500_tasks_succeed_on_both_agents(stack: Stack) -> None:
    async with Client(stack.gateway) as client:
        agents = {a.agent_id: a.name for a in (await client.list_agents())[0]}
        assert sorted(agents.values()) == ["demo-1", "demo-2"], stack.log()
        payloads = [{"n": i, "text": f"task {i}"} for i in range(N_TASKS)]
        tasks = []
        for start in range(0, N_TASKS, 100):
            batch = [{"capability": "echo", "payload": p} for p in payloads[start : start + 100]]
            tasks += await client.submit_many(batch)
        assert len({t.task_id for t in tasks}) == N_TASKS
        done = await asyncio.gather(*(client.wait(t.task_id, timeout=120) for t in tasks))
    by_agent: dict[str, int] = {}
    for task, payload in zip(done, payloads, strict=True):
        assert task.state == task_pb2.TASK_STATE_SUCCEEDED, (task, stack.log())
        assert json.loads(task.result) == payload
        assert task.attempt == 1
        by_agent[agents[task.agent_id]] = by_agent.get(agents[task.agent_id], 0) + 1
    assert set(by_agent) == {"demo-1", "demo-2"}, by_agent
    assert sum(by_agent.values()) == N_TASKS


def hivewire(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hivewire.cli", *args],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_submit_wait_json(stack: Stack) -> None:
    out = hivewire(stack, "submit", "echo", "--payload", '{"hi": 1}', "--wait", "--json")
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["state"] == "SUCCEEDED"
    assert body["result"] == {"hi": 1}
    assert body["attempt"] == 1
    assert len(body["agent_id"]) == 32
    assert len(body["task_id"]) == 32
    got = json.loads(hivewire(stack, "task", "get", body["task_id"], "--json").stdout)
    assert got["task_id"] == body["task_id"]
    assert got["state"] == "SUCCEEDED"


def test_cli_agents_json(stack: Stack) -> None:
    out = hivewire(stack, "agents", "--json")
    assert out.returncode == 0, out.stderr
    agents = json.loads(out.stdout)
    assert sorted(a["name"] for a in agents) == ["demo-1", "demo-2"]
    for agent in agents:
        assert agent["state"] == "ONLINE"
        assert {"echo", "wordcount"} <= set(agent["capabilities"])
        assert len(agent["agent_id"]) == 32


def test_cli_failing_task_is_retried_then_failed(stack: Stack) -> None:
    out = hivewire(
        stack, "submit", "fail", "--payload", "{}", "--max-attempts", "2", "--wait", "--json"
    )
    assert out.returncode == 1, out.stderr
    body = json.loads(out.stdout)
    assert body["state"] == "FAILED"
    assert body["attempt"] == 2
    assert body["error"]


async def test_every_service_is_serving_and_reflects(stack: Stack) -> None:
    for addr in (stack.gateway, stack.registry, stack.coordinator):
        async with grpc.aio.insecure_channel(addr) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, addr
    async with grpc.aio.insecure_channel(stack.gateway) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = [s.name async for r in call for s in r.list_services_response.service]
    assert "hivewire.v1.GatewayService" in names


async def _status(call: object) -> tuple[grpc.StatusCode, list[str], str]:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        status = rpc_status.from_call(exc)
        assert status is not None, exc
        info = error_info(status)
        return exc.code(), [v.field for v in field_violations(status)], info.reason if info else ""
    raise AssertionError("call succeeded")


async def test_bad_input_gets_clear_statuses(stack: Stack) -> None:
    async with grpc.aio.insecure_channel(stack.gateway) as channel:
        gw = gateway_pb2_grpc.GatewayServiceStub(channel)
        code, fields, _ = await _status(
            gw.SubmitTask(task_pb2.SubmitTaskRequest(capability=""), timeout=5)
        )
        assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["capability"])
        code, fields, _ = await _status(
            gw.SubmitTask(
                task_pb2.SubmitTaskRequest(capability="echo", payload=b"x" * (1024 * 1024 + 1)),
                timeout=5,
            )
        )
        assert (code, fields) == (grpc.StatusCode.RESOURCE_EXHAUSTED, ["payload"])
        code, _, reason = await _status(
            gw.GetTask(task_pb2.GetTaskRequest(task_id="0" * 32), timeout=5)
        )
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "TASK_NOT_FOUND")
        code, fields, _ = await _status(
            gw.GetTask(task_pb2.GetTaskRequest(task_id="nope"), timeout=5)
        )
        assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["task_id"])
