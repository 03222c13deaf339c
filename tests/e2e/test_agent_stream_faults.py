"""gRPC agents (AgentService on gateways) under faults: a gateway killed -9 while its agents
hold tasks, and an agent stopped past its lease. Registry, coordinator, gateways and agents are
real processes on a real redis-server; the agents are given no usable Redis address."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator

import pytest

from hivewire.v1 import task_pb2
from tests.e2e.delivery_stack import Driver, Processes, types
from tests.up import refusing_addr
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

RUNNING = task_pb2.TASK_STATE_RUNNING
SUCCEEDED = task_pb2.TASK_STATE_SUCCEEDED


@pytest.fixture
def nowhere() -> Iterator[str]:
    with refusing_addr() as addr:
        yield addr


async def start_gateway(procs: Processes, name: str) -> str:
    return await procs.start_service(
        name, "gateway", {"HIVEWIRE_COORDINATOR_ADDR": procs.coordinators[0]}
    )


def start_grpc_agent(procs: Processes, name: str, target: str, nowhere: str, n: int = 4) -> None:
    """A Python agent over AgentService at `target` (any gRPC target), with no Redis to use."""
    env = {
        "HIVEWIRE_AGENT_TRANSPORT": "grpc",
        "HIVEWIRE_GATEWAY_ADDR": target,
        "HIVEWIRE_REDIS_URL": f"redis://{nowhere}/0",
        "HIVEWIRE_REGISTRY_ADDR": nowhere,
    }
    procs.spawn(name, ["-m", "tests.e2e.delivery_agent", name, str(n)], env)


def echo(n: int, secs: float) -> bytes:
    return json.dumps({"n": n, "secs": secs}).encode()


# A lease long enough that agents whose gateway died resume their identity on the other one
# even on a loaded machine (the invariants below hold either way).
@pytest.mark.lease(4)
async def test_gateway_kill9_while_grpc_agents_hold_tasks(
    procs: Processes, driver: Driver, nowhere: str
) -> None:
    first = await start_gateway(procs, "gateway-a")
    second = await start_gateway(procs, "gateway-b")
    # pick_first over both: every agent is on the first gateway until it dies.
    target = f"ipv4:{first},{second}"
    for name in ("x", "y"):
        start_grpc_agent(procs, name, target, nowhere)
    agents = {await driver.agent_id("x"): "x", await driver.agent_id("y"): "y"}
    tasks = [await driver.submit("echo", echo(i, 0.4)) for i in range(40)]

    async def held() -> bool:
        states = [(await driver.store.get(t.task_id)).state for t in tasks]
        return states.count(RUNNING) >= 4

    await eventually(held, message="the agents holding tasks")
    procs.kill("gateway-a")
    for i, task in enumerate(tasks):
        done = await driver.wait_for(task.task_id, lambda t: t.state == SUCCEEDED, within=60)
        result = json.loads(done.result)
        assert result["echo"] == {"n": i, "secs": 0.4}, procs.logs()
        assert result["agent"] == agents.get(done.agent_id), result
    events = await driver.events()
    succeeded = [e.task_id for e in events if types([e]) == ["TASK_SUCCEEDED"]]
    assert sorted(succeeded) == sorted(t.task_id for t in tasks)  # each exactly once
    # The agents went on under the same identities, through the other gateway.
    log = (procs.log_dir / "gateway-b.log").read_text()
    for agent_id, name in agents.items():
        assert f"agent {agent_id} ({name}) resumed on this gateway" in log, log


async def test_stalled_grpc_agent_loses_its_task_and_its_late_result_is_dropped(
    procs: Processes, driver: Driver, nowhere: str
) -> None:
    gateway = await start_gateway(procs, "gateway")
    start_grpc_agent(procs, "a", gateway, nowhere, n=1)
    a = await driver.agent_id("a")
    # Long enough that agent a is still running it after b took over, even on a slow machine.
    task = await driver.submit("echo", echo(1, 6))
    await driver.wait_for(task.task_id, lambda t: t.state == RUNNING and t.agent_id == a)
    start_grpc_agent(procs, "b", gateway, nowhere, n=1)
    b = await driver.agent_id("b")
    procs.signal("a", signal.SIGSTOP)
    assert (await driver.store.get(task.task_id)).state == RUNNING, "a finished before the stop"
    done = await driver.wait_for(task.task_id, lambda t: t.state == SUCCEEDED)
    procs.signal("a", signal.SIGCONT)
    # The agent lease (2 s) runs out before the attempt's (3 s): a is reclaimed, b runs it.
    assert (done.agent_id, done.attempt) == (b, 2), procs.logs()
    assert json.loads(done.result) == {"echo": {"n": 1, "secs": 6}, "agent": "b"}

    # a comes back under a new identity and drops the attempt it was stopped in.
    async def dropped() -> bool:
        return "dropping 1 task(s)" in (procs.log_dir / "a.log").read_text()

    await eventually(dropped, within=30, message=f"agent a dropping its attempt\n{procs.logs()}")
    assert await driver.agent_id("a") != a
    after = await driver.store.get(task.task_id)
    assert (after.state, after.result, after.attempt, after.agent_id) == (
        SUCCEEDED,
        done.result,
        2,
        b,
    )
    assert types(await driver.events(task.task_id)).count("TASK_SUCCEEDED") == 1
