"""The Node.js reference agent (examples/node/agent.js) as a real process against `hivewire up
--demo`: it registers over AgentService, runs tasks within its slots, stops cancelled ones,
resumes after a broken stream (resending a result the gateway never got), drains on SIGTERM,
and exits 1 when the gateway refuses its hello; and against `hivewire up --secure`, it connects
with the HIVEWIRE_TLS_* certificates."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hivewire.cli.local_tls import LocalTls
from hivewire.client import Client
from hivewire.core.tls import tls_env
from hivewire.v1 import agent_pb2, event_pb2, stream_pb2, task_pb2
from tests.e2e.conftest import Stack, hivewire_up
from tests.e2e.node_modules import NODE_DIR, ensure_node_modules
from tests.e2e.tcp_proxy import TcpProxy
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

# The demo agents offer `upper` too: tasks here require this label, which only the Node agent has.
LABEL = {"runtime": "node"}
# A short agent lease (heartbeats every 2 s) so cancellations reach the agent quickly.
LEASE_SECONDS = "6"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    ensure_node_modules()
    env = {**os.environ, "HIVEWIRE_LEASE_SECONDS": LEASE_SECONDS}
    with hivewire_up(tmp_path_factory.mktemp("hivewire-data"), env) as s:
        yield s


@dataclass
class NodeAgent:
    """A running `node agent.js`; `lines` is its stderr so far."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    agent_id: str = ""

    def log(self) -> str:
        return "".join(self.lines)

    async def line(self, pattern: str, within: float = 30.0) -> re.Match[str]:
        """The first log line matching `pattern`, once it is there."""

        def found() -> re.Match[str] | None:
            return next(filter(None, (re.search(pattern, line) for line in self.lines)), None)

        return await eventually(found, within=within, message=f"{pattern!r} in\n{self.log()}")

    async def exit_code(self, within: float = 30.0) -> int:
        return await asyncio.wait_for(self.process.wait(), within)


StartAgent = Callable[..., Awaitable[NodeAgent]]


@pytest.fixture
async def start_agent(stack: Stack) -> AsyncIterator[StartAgent]:
    """Start `node agent.js ARGS` (on the stack's gateway unless --gateway is given). Each one
    still running at the end is drained (SIGTERM), so no later test's task goes to a dead
    agent's inbox; killed if that takes over 30 s."""
    started: list[tuple[NodeAgent, asyncio.Task[None]]] = []

    async def start(*args: str, gateway: str = "", welcome: bool = True) -> NodeAgent:
        process = await asyncio.create_subprocess_exec(
            "node", "agent.js", "--gateway", gateway or stack.gateway, *args,
            cwd=NODE_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        agent = NodeAgent(process)
        started.append((agent, asyncio.create_task(_pump(process, agent.lines))))
        if welcome:
            agent.agent_id = (await agent.line(r"registered as agent ([0-9a-f]{32})")).group(1)
        return agent

    yield start
    for agent, pump in started:
        if agent.process.returncode is None:
            agent.process.send_signal(signal.SIGTERM)
            try:
                await agent.exit_code()
            except TimeoutError:
                agent.process.kill()
                await agent.process.wait()
        await pump


async def _pump(process: asyncio.subprocess.Process, lines: list[str]) -> None:
    assert process.stderr is not None
    while line := await process.stderr.readline():
        lines.append(line.decode())


async def _submit_cli(stack: Stack, capability: str, payload: str) -> dict[str, object]:
    """`hivewire submit CAPABILITY --payload P --label runtime=node --wait --json`."""
    label = ",".join(f"{k}={v}" for k, v in LABEL.items())
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hivewire.cli", "submit", capability, "--payload", payload,
        "--label", label, "--wait", "--timeout", "60", "--json",
        env=stack.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, err.decode() + out.decode()
    task: dict[str, object] = json.loads(out)
    return task


async def _submit(client: Client, capability: str, payload: object) -> str:
    task = await client.submit(capability, payload, required_labels=LABEL)
    return task.task_id


async def _state_is(client: Client, task_id: str, state: int) -> bool:
    return (await client.get(task_id)).state == state


async def _progress(client: Client, task_id: str) -> stream_pb2.TaskProgress | None:
    task = await client.get(task_id)
    return task.progress if task.HasField("progress") else None


async def _agent(client: Client, agent_id: str) -> agent_pb2.Agent:
    async for agent in client.iter_agents(include_offline=True):
        if agent.agent_id == agent_id:
            return agent
    raise AssertionError(f"agent {agent_id} is not listed")


async def test_node_agent_registers_and_runs_upper(stack: Stack, start_agent: StartAgent) -> None:
    node = await start_agent(
        "--capability", "upper", "--capability", "count", "--concurrency", "2",
        "--name", "node-upper", "--label", "runtime=node",
    )  # fmt: skip
    async with Client(stack.gateway) as client:
        listed = await _agent(client, node.agent_id)
        assert listed.name == "node-upper"
        assert list(listed.capabilities) == ["upper", "count"]
        assert (listed.max_concurrency, dict(listed.labels)) == (2, LABEL)
        assert listed.state == agent_pb2.AGENT_STATE_ONLINE

        task = await _submit_cli(stack, "upper", '{"text": "hi"}')
        assert (task["state"], task["result"]) == ("SUCCEEDED", {"text": "HI"})
        assert (task["agent_id"], task["attempt"]) == (node.agent_id, 1)

        done = await client.wait(await _submit(client, "upper", "a whole string"), timeout=60)
        assert (done.state, json.loads(done.result)) == (task_pb2.TASK_STATE_SUCCEEDED,
                                                         "A WHOLE STRING")  # fmt: skip
        # A payload the handler cannot use fails at once, without retries.
        bad = await client.wait(await _submit(client, "upper", {"n": 1}), timeout=60)
        assert (bad.state, bad.attempt, bad.agent_id) == (task_pb2.TASK_STATE_FAILED, 1,
                                                          node.agent_id)  # fmt: skip
        assert 'payload must be {"text": string}' in bad.error


async def test_node_agent_fills_its_slots_and_no_more(
    stack: Stack, start_agent: StartAgent
) -> None:
    node = await start_agent(
        "--capability", "count", "--concurrency", "2", "--label", "runtime=node"
    )
    step = 0.3  # each task counts to 3: at least 0.9 s of handler time
    async with Client(stack.gateway) as client:
        tasks = await client.submit_many(
            {"capability": "count", "payload": {"to": 3, "delay_ms": int(step * 1000)},
             "required_labels": LABEL}
            for _ in range(6)
        )  # fmt: skip
        done = [await client.wait(t.task_id, timeout=60) for t in tasks]
        assert {(t.state, t.agent_id, t.result) for t in done} == {
            (task_pb2.TASK_STATE_SUCCEEDED, node.agent_id, b'{"counted":3}')
        }
        # Start times (the agent's clock): two at once, and never a third before one ended.
        starts = sorted(t.start_time.ToMilliseconds() / 1000 for t in done)
        assert starts[1] - starts[0] < 3 * step, starts
        assert all(later - earlier >= 3 * step - 0.05
                   for earlier, later in zip(starts, starts[2:], strict=False)), starts  # fmt: skip
        # Each attempt ran long enough to be reported STARTED before its result, and its
        # output lines came in PROGRESS reports.
        assert event_pb2.EVENT_TYPE_TASK_STARTED in await _event_types(client, tasks[0].task_id)
        output = [c async for c in client.task_output(tasks[0].task_id)]
        assert [c.text for c in output] == ["1/3", "2/3", "3/3"]
        assert {c.stream for c in output} == {stream_pb2.OUTPUT_STREAM_STDOUT}
    assert "3/2 slots" not in node.log()


async def _event_types(client: Client, task_id: str) -> list[int]:
    """The types of a finished task's events, up to its TASK_SUCCEEDED."""
    types: list[int] = []
    async with (
        asyncio.timeout(30),
        contextlib.aclosing(client.events(task_id=task_id, since_cursor="0-0")) as events,
    ):
        async for event in events:
            types.append(event.type)
            if event.type == event_pb2.EVENT_TYPE_TASK_SUCCEEDED:
                break
    return types


async def test_node_agent_stops_a_cancelled_task(stack: Stack, start_agent: StartAgent) -> None:
    node = await start_agent(
        "--capability", "count", "--concurrency", "1", "--label", "runtime=node"
    )
    async with Client(stack.gateway) as client:
        task_id = await _submit(client, "count", {"to": 600, "delay_ms": 100})
        # Its progress is reported while it runs.
        progress = await eventually(lambda: _progress(client, task_id))
        assert 0 < progress.fraction < 1
        assert re.fullmatch(r"counted \d+ of 600", progress.message)
        await client.cancel(task_id)
        await node.line(rf"task {task_id} attempt 1 CANCELLED")
        # The CANCELLED report was stored: the gateway freed the agent's one slot for more work.
        quick = await client.wait(await _submit(client, "count", {"to": 1, "delay_ms": 0}), 60)
        assert (quick.state, quick.agent_id) == (task_pb2.TASK_STATE_SUCCEEDED, node.agent_id)
        assert (await client.get(task_id)).state == task_pb2.TASK_STATE_CANCELLED


async def test_node_agent_resumes_and_resends_after_a_broken_stream(
    stack: Stack, start_agent: StartAgent
) -> None:
    async with TcpProxy(stack.gateway) as proxy, Client(stack.gateway) as client:
        node = await start_agent(
            "--capability", "count", "--label", "runtime=node", gateway=proxy.addr
        )
        # The stream breaks while a task runs: the agent resumes and the same attempt finishes.
        running = await _submit(client, "count", {"to": 10, "delay_ms": 200})
        await node.line(rf"task {running} attempt 1 \(count\) started")
        proxy.cut()
        await node.line(rf"resumed agent {node.agent_id}, keeping 1 task\(s\)")
        done = await client.wait(running, timeout=60)
        assert (done.state, done.attempt, done.agent_id) == (task_pb2.TASK_STATE_SUCCEEDED, 1,
                                                             node.agent_id)  # fmt: skip

        # The result is sent but never reaches the gateway; after the break it is sent again.
        # What the agent sends is held from before the task is submitted, so no window of the
        # task's run has to be caught: the assignment reaches the agent, its reports do not.
        proxy.hold_upstream()
        lost = await _submit(client, "count", {"to": 2, "delay_ms": 100})
        try:
            await node.line(rf"task {lost} attempt 1 SUCCEEDED")
        except AssertionError as exc:
            task = await client.get(lost)
            raise AssertionError(f"{exc}\nthe task: {task}\nthe stack:\n{stack.log()}") from None
        assert (await client.get(lost)).state == task_pb2.TASK_STATE_ASSIGNED
        proxy.cut()
        done = await client.wait(lost, timeout=60)
        assert (done.state, done.attempt, done.agent_id) == (task_pb2.TASK_STATE_SUCCEEDED, 1,
                                                             node.agent_id)  # fmt: skip
        assert json.loads(done.result) == {"counted": 2}
        assert len(re.findall(rf"resumed agent {node.agent_id}", node.log())) == 2
        node.process.send_signal(signal.SIGTERM)  # leaves through the proxy, before it closes
        assert await node.exit_code() == 0, node.log()


async def test_node_agent_drains_on_sigterm(stack: Stack, start_agent: StartAgent) -> None:
    node = await start_agent("--capability", "upper", "--capability", "count",
                             "--label", "runtime=node")  # fmt: skip
    async with Client(stack.gateway) as client:
        running = await _submit(client, "count", {"to": 15, "delay_ms": 200})
        await eventually(lambda: _state_is(client, running, task_pb2.TASK_STATE_RUNNING))
        node.process.send_signal(signal.SIGTERM)

        async def draining() -> bool:
            return (await _agent(client, node.agent_id)).state == agent_pb2.AGENT_STATE_DRAINING

        await eventually(draining, message="the agent DRAINING")
        # A draining agent takes no new work: this task waits for another agent.
        waiting = await _submit(client, "upper", {"text": "later"})
        try:
            assert await node.exit_code() == 0, node.log()
            done = await client.get(running)
            assert (done.state, done.agent_id) == (task_pb2.TASK_STATE_SUCCEEDED, node.agent_id)
            left = await _agent(client, node.agent_id)
            assert left.state == agent_pb2.AGENT_STATE_OFFLINE
            assert (await client.get(waiting)).state == task_pb2.TASK_STATE_PENDING
        finally:
            await client.cancel(waiting)
    assert "drained; leaving" in node.log()
    assert f"agent {node.agent_id} left" in node.log()


async def test_node_agent_exits_when_the_gateway_refuses_its_hello(
    start_agent: StartAgent,
) -> None:
    node = await start_agent("--capability", "upper", "--name", "x" * 200, welcome=False)
    assert await node.exit_code() == 1
    await node.line(r"^error: the gateway at .* refused the agent: INVALID_ARGUMENT: hello\.name")


async def _node_process(env: dict[str, str], *args: str) -> NodeAgent:
    process = await asyncio.create_subprocess_exec(
        "node", "agent.js", *args, cwd=NODE_DIR, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    return NodeAgent(process)


def _no_tls_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HIVEWIRE_TLS_")}


async def test_node_agent_connects_over_mtls(tmp_path: Path) -> None:
    ensure_node_modules()
    with hivewire_up(tmp_path / "data", _no_tls_env(), args=("--secure",)) as secure:
        client_tls = LocalTls(tmp_path / "data" / "tls").client()
        # --secure turns tokens on: the admin token `up` wrote issues the Node agent its own.
        admin = re.search(
            r"^HIVEWIRE_TOKEN=(\S+)$", (tmp_path / "data" / "client.env").read_text(), re.M
        )
        assert admin is not None
        async with Client(secure.gateway, tls=client_tls, token=admin.group(1)) as client:
            made = await client.create_token("node-upper", "agent", capabilities=["upper"])
        token_file = tmp_path / "node-upper.token"
        token_file.write_text(made.token + "\n")
        env = {**_no_tls_env(), **tls_env(client_tls), "HIVEWIRE_TOKEN_FILE": str(token_file)}
        node = await _node_process(
            env, "--gateway", secure.gateway, "--capability", "upper", "--label", "runtime=node"
        )
        pump = asyncio.create_task(_pump(node.process, node.lines))
        try:
            agent_id = (await node.line(r"registered as agent ([0-9a-f]{32})")).group(1)
            assert "(TLS)" in node.log()
            async with Client(secure.gateway, tls=client_tls, token=admin.group(1)) as client:
                task_id = await _submit(client, "upper", {"text": "over tls"})
                done = await client.wait(task_id, timeout=60)
            assert (done.state, done.agent_id) == (task_pb2.TASK_STATE_SUCCEEDED, agent_id)
            assert json.loads(done.result) == {"text": "OVER TLS"}
            node.process.send_signal(signal.SIGTERM)
            assert await node.exit_code() == 0, node.log()
        finally:
            if node.process.returncode is None:
                node.process.kill()
                await node.process.wait()
            await pump


async def test_node_agent_refuses_tls_settings_that_cannot_work(tmp_path: Path) -> None:
    ensure_node_modules()
    env = {**_no_tls_env(), "HIVEWIRE_TLS_CERT": str(tmp_path / "client.pem")}
    node = await _node_process(env, "--capability", "upper")
    pump = asyncio.create_task(_pump(node.process, node.lines))
    assert await node.exit_code() == 2
    await pump
    assert "HIVEWIRE_TLS_CERT and HIVEWIRE_TLS_KEY must be set together" in node.log()
    unreadable = {**env, "HIVEWIRE_TLS_KEY": str(tmp_path / "missing-key.pem")}
    node = await _node_process(unreadable, "--capability", "upper")
    pump = asyncio.create_task(_pump(node.process, node.lines))
    assert await node.exit_code() == 2
    await pump
    assert "HIVEWIRE_TLS_CA" not in node.log() and "cannot read it" in node.log()
    no_token = {**_no_tls_env(), "HIVEWIRE_TOKEN_FILE": str(tmp_path / "missing.token")}
    node = await _node_process(no_token, "--capability", "upper")
    pump = asyncio.create_task(_pump(node.process, node.lines))
    assert await node.exit_code() == 2
    await pump
    assert "HIVEWIRE_TOKEN_FILE=" in node.log() and "ENOENT" in node.log(), node.log()
