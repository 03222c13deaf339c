"""`hivewire dashboard` driven headlessly by Textual's pilot against a running stack."""

from __future__ import annotations

import asyncio

import grpc
from textual.css.query import NoMatches
from textual.widget import Widget
from textual.widgets import DataTable, Input, ProgressBar, RichLog, Sparkline, Static

from hivewire.agent import Agent, TaskContext
from hivewire.client import Client
from hivewire.dashboard import Dashboard
from hivewire.dashboard.app import QueueLine, TaskLine
from hivewire.v1 import coordinator_pb2, coordinator_pb2_grpc, task_pb2
from tests.integration.conftest import MakeStack
from tests.integration.registry_helpers import deregister, register, registry_stub
from tests.integration.stack import Stack
from tests.waiting import eventually


def setup(agent: Agent) -> None:
    @agent.handler("echo")
    async def echo(ctx: TaskContext) -> bytes:
        return ctx.payload


def widget_text(widget: Widget | None) -> str:
    """The text of a line's label; '' until the line exists and has composed its children."""
    if widget is None:
        return ""
    try:
        return str(widget.query_one(Static).content)
    except NoMatches:
        return ""


def log_text(app: Dashboard) -> str:
    return "\n".join(strip.text for strip in app.query_one("#log", RichLog).lines)


async def test_dashboard_shows_the_system_and_survives_a_gateway_restart(stack: Stack) -> None:
    worker = await stack.agent("worker", setup=setup, max_concurrency=3)
    app = Dashboard(stack.gateway_addr, stats_interval=0.2)
    async with app.run_test(size=(150, 45)) as pilot, Client(stack.gateway_addr) as client:
        # Agents table: the agent, its state, capabilities and slots.
        table = app.query_one("#agents", DataTable)
        await eventually(lambda: table.row_count == 1)
        row = table.get_row_at(0)
        assert row[:5] == [worker.agent_id[:12], "worker", "ONLINE", "echo", "0/3"]
        # Both streams are open before any work: the log and the sparklines see all of it.
        await eventually(lambda: app.model.connected and app.model.stats is not None)

        tasks = await client.submit_many([{"capability": "echo", "payload": i} for i in range(6)])
        await client.submit("nobody", {})
        for task in tasks:
            await client.wait(task.task_id, timeout=30)
        # Event log, queues with a sparkline, totals in the header.
        await eventually(lambda: log_text(app).count("TASK_SUCCEEDED") == 6)
        assert tasks[0].task_id[:8] in log_text(app)
        await eventually(lambda: {"echo", "nobody"} <= set(app._queues))
        await eventually(lambda: "succeeded 6" in str(app.query_one("#totals", Static).content))

        def nobody_label() -> str:
            return widget_text(app._queues.get("nobody"))

        await eventually(lambda: "nobody" in nobody_label() and "1 queued" in nobody_label())

        def echo_peak() -> float:
            try:
                return max(app._queues["echo"].query_one(Sparkline).data or [0])
            except NoMatches:  # mounted, not composed yet
                return 0

        await eventually(lambda: echo_peak() > 0)
        assert isinstance(app._queues["echo"], QueueLine)
        # Workflows in progress: one step done, the next waits for an agent that never comes.
        wf = await client.submit_workflow(
            {
                "name": "pipeline",
                "steps": [
                    {"id": "first", "capability": "echo", "payload": {}},
                    {"id": "second", "capability": "nobody", "depends_on": ["first"]},
                ],
            }
        )
        await eventually(lambda: wf.workflow_id in app._workflows)

        def workflow_label() -> str:
            return widget_text(app._workflows.get(wf.workflow_id))

        await eventually(lambda: "pipeline" in workflow_label() and "1/2" in workflow_label())
        assert app.model.workflows_available

        # p pauses the log: new events are held, then shown on resume.
        await pilot.press("p")
        assert app.model.paused
        held = await client.submit("echo", "while-paused")
        await client.wait(held.task_id, timeout=30)
        await eventually(lambda: any(held.task_id[:8] in line for line in app.model.held))
        assert held.task_id[:8] not in log_text(app)
        await pilot.press("p")
        await eventually(lambda: held.task_id[:8] in log_text(app))

        # f filters every panel.
        await pilot.press("f")
        assert app.query_one("#filter", Input).has_focus
        await pilot.press(*"nobody", "enter")
        assert app.model.filter == "nobody"
        await eventually(lambda: table.row_count == 0)  # the agent does not offer "nobody"
        await eventually(lambda: not app._queues["echo"].display)
        assert app._queues["nobody"].display
        assert "TASK_SUCCEEDED" not in log_text(app)
        await pilot.press("f", *["backspace"] * 6, "enter")
        await eventually(lambda: table.row_count == 1)

        # The gateway restarts: the dashboard reconnects and resumes from its cursor.
        cursors_before = list(app.model.cursors)
        await stack.gateway.shutdown()
        await eventually(lambda: not app.model.connected)
        during = await client_submit_direct(stack)
        await stack.restart_gateway()
        await eventually(lambda: app.model.connected)
        after = await client.submit("echo", "after-restart")
        await client.wait(after.task_id, timeout=30)
        await eventually(lambda: after.task_id[:8] in log_text(app))
        assert during[:8] in log_text(app)  # written while no gateway ran: not lost
        cursors = list(app.model.cursors)
        assert len(cursors) == len(set(cursors))  # nothing repeated
        assert cursors[: len(cursors_before)] == cursors_before
        assert app.model.reconnects >= 1

        await pilot.press("q")
    assert app.return_code == 0


async def test_live_agents_head_the_panel_among_many_offline_ones(make_stack: MakeStack) -> None:
    """Restarted demo stacks leave OFFLINE agents behind: they never push live ones away."""
    stack = await make_stack(lease_seconds=120.0)
    async with registry_stub(stack.settings) as stub:
        for i in range(20):
            await deregister(stub, await register(stub, f"old{i}"))
    worker = await stack.agent("worker", setup=setup)
    app = Dashboard(stack.gateway_addr, stats_interval=0.2)
    async with app.run_test(size=(150, 45)) as pilot:
        table = app.query_one("#agents", DataTable)
        await eventually(lambda: table.row_count == 21)  # offline ones within the retention
        assert table.get_row_at(0)[:3] == [worker.agent_id[:12], "worker", "ONLINE"]
        assert {table.get_row_at(i)[2] for i in range(1, 21)} == {"OFFLINE"}
        await pilot.press("q")


async def client_submit_direct(stack: Stack) -> str:
    """Submit through the coordinator while the gateway is down (the work goes on)."""
    async with grpc.aio.insecure_channel(stack.settings.coordinator_addr) as channel:
        stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)
        reply = await stub.SubmitTask(
            coordinator_pb2.CoordinatorServiceSubmitTaskRequest(
                request=task_pb2.SubmitTaskRequest(capability="echo", payload=b'"during"')
            ),
            timeout=10,
        )
    return str(reply.response.task.task_id)


async def test_running_tasks_show_their_progress_until_they_end(stack: Stack) -> None:
    release = asyncio.Event()

    async def build(ctx: TaskContext) -> str:
        await ctx.output("cc -c main.c")
        await ctx.progress(0.5, "compiling")
        await release.wait()
        return "built"

    await stack.agent("builder", {"build": build})
    app = Dashboard(stack.gateway_addr, stats_interval=0.2)
    async with app.run_test(size=(150, 45)) as pilot:
        await eventually(lambda: app.model.connected)
        task = await stack.client.submit("build")

        def bar() -> float | None:
            line = app._tasks.get(task.task_id)
            try:
                return line.query_one(ProgressBar).percentage if line else None
            except NoMatches:  # mounted, not composed yet
                return None

        await eventually(lambda: bar() == 0.5, message="the task's bar at 50%")
        line = app._tasks[task.task_id]
        assert isinstance(line, TaskLine)
        label = widget_text(line)
        assert "build" in label and "compiling" in label and task.task_id[:8] in label
        assert "TASK_PROGRESS" not in log_text(app)
        release.set()
        await eventually(lambda: task.task_id not in app._tasks, message="the line removed")
        await pilot.press("q")
