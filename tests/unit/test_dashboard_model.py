"""The dashboard's model: pause holds lines, the filter narrows every panel, cursors move."""

from __future__ import annotations

from hivewire.client._events import frame_cursor
from hivewire.dashboard.model import MAX_PROGRESS_ROWS, DashboardModel
from hivewire.v1 import agent_pb2, event_pb2, stats_pb2, stream_pb2, workflow_pb2


def event(cursor: str, cap: str = "echo", snapshot: bool = False) -> event_pb2.Event:
    return event_pb2.Event(
        cursor=cursor, type=event_pb2.EVENT_TYPE_TASK_SUCCEEDED, task_id="ab" * 16,
        capability=cap, snapshot=snapshot,
    )  # fmt: skip


def test_pause_holds_lines_and_resume_shows_them() -> None:
    m = DashboardModel()
    m.on_event(event("1-0"))
    m.on_event(event("1-1", snapshot=True))  # state, not history: not logged
    assert (len(m.log), m.log_total) == (1, 1)
    m.toggle_pause()
    m.on_event(event("2-0"))
    assert (len(m.log), len(m.held)) == (1, 1)
    m.toggle_pause()
    assert (len(m.log), len(m.held), m.log_total) == (2, 0, 2)
    assert list(m.cursors) == ["1-0", "2-0"]


def test_filter_narrows_agents_queues_workflows_and_log() -> None:
    m = DashboardModel()
    m.agents = [
        agent_pb2.Agent(agent_id="a" * 32, name="one", capabilities=["echo"], max_concurrency=4,
                        in_flight=1, state=agent_pb2.AGENT_STATE_ONLINE),
        agent_pb2.Agent(agent_id="b" * 32, name="two", capabilities=["gpu"], max_concurrency=1,
                        state=agent_pb2.AGENT_STATE_ONLINE),
    ]  # fmt: skip
    m.on_stats(stats_pb2.Stats(capabilities=[
        stats_pb2.CapabilityStats(capability="echo", queue_depth=3, throughput_per_second=2.5),
        stats_pb2.CapabilityStats(capability="gpu", queue_depth=1),
    ]))  # fmt: skip
    step = workflow_pb2.WorkflowStep
    m.workflows = [
        workflow_pb2.Workflow(workflow_id="c" * 32, name="etl",
                              state=workflow_pb2.WORKFLOW_STATE_RUNNING,
                              steps=[step(state=workflow_pb2.STEP_STATE_SUCCEEDED),
                                     step(state=workflow_pb2.STEP_STATE_RUNNING)]),
    ]  # fmt: skip
    m.on_event(event("1-0", "echo"))
    m.on_event(event("1-1", "gpu"))
    assert [r.slots for r in m.agent_rows()] == ["1/4", "0/1"]
    assert [(r.capability, r.depth, r.history) for r in m.queue_rows()] == [
        ("echo", 3, (2.5,)), ("gpu", 1, (0.0,))
    ]  # fmt: skip
    assert [(w.name, w.done, w.total) for w in m.workflow_rows()] == [("etl", 1, 2)]
    m.filter = "gpu"
    assert [r.name for r in m.agent_rows()] == ["two"]
    assert [r.capability for r in m.queue_rows()] == ["gpu"]
    assert m.workflow_rows() == []
    assert len(m.log_lines()) == 1 and "gpu" in m.log_lines()[0]
    assert "filter 'gpu'" in m.totals()


def test_frame_cursor_follows_events_heartbeats_and_snapshot_end() -> None:
    f = event_pb2.StreamEventsResponse
    assert frame_cursor(f(event=event("5-1"))) == "5-1"
    assert frame_cursor(f(event=event("", snapshot=True))) == ""
    assert frame_cursor(f(heartbeat=event_pb2.StreamHeartbeat(cursor="6-0"))) == "6-0"
    assert frame_cursor(f(snapshot_complete=event_pb2.SnapshotComplete(cursor="7-0"))) == "7-0"


def test_live_agents_head_the_agents_panel_however_many_are_offline() -> None:
    def agent(name: str, state: agent_pb2.AgentState.ValueType) -> agent_pb2.Agent:
        return agent_pb2.Agent(agent_id=name.ljust(32, "0"), name=name, state=state)

    dead = [agent(f"dead{i}", agent_pb2.AGENT_STATE_OFFLINE) for i in range(20)]
    live = [agent("live", agent_pb2.AGENT_STATE_ONLINE)]
    draining = [agent("draining", agent_pb2.AGENT_STATE_DRAINING)]
    m = DashboardModel()
    m.agents = dead[:10] + live + dead[10:] + draining
    rows = m.agent_rows()
    assert [(r.name, r.state) for r in rows[:2]] == [("live", "ONLINE"), ("draining", "DRAINING")]
    assert [r.name for r in rows[2:]] == [a.name for a in dead]  # in the order listed
    m.filter = "i"  # live, draining and every dead one match
    assert [r.name for r in m.agent_rows()][:2] == ["live", "draining"]


def report(kind: int, task: str, **kw: object) -> event_pb2.Event:
    return event_pb2.Event(type=kind, task_id=task * 32, capability="build", **kw)  # type: ignore[arg-type]


def test_running_tasks_show_their_progress_and_leave_when_their_attempt_ends() -> None:
    progress, output = event_pb2.EVENT_TYPE_TASK_PROGRESS, event_pb2.EVENT_TYPE_TASK_OUTPUT
    m = DashboardModel()
    m.on_event(report(output, "a", output_chunks=3))
    m.on_event(report(progress, "a", progress=stream_pb2.TaskProgress(fraction=0.4, message="cc")))
    m.on_event(report(output, "a", output_chunks=2))
    m.on_event(report(progress, "b", progress=stream_pb2.TaskProgress(message="waiting")))
    rows = m.progress_rows()
    assert [(r.task_id[0], r.fraction, r.message, r.lines) for r in rows] == [
        ("a", 0.4, "cc", 5), ("b", None, "waiting", 0)
    ]  # fmt: skip
    assert m.log_total == 0  # progress and output reports are not logged
    m.filter = "waiting"
    assert [r.task_id[0] for r in m.progress_rows()] == ["b"]
    m.filter = ""
    m.on_event(report(event_pb2.EVENT_TYPE_TASK_SUCCEEDED, "a"))
    m.on_event(report(event_pb2.EVENT_TYPE_TASK_RETRYING, "b"))
    assert m.progress_rows() == [] and m.log_total == 2


def test_the_running_tasks_panel_is_bounded() -> None:
    m = DashboardModel()
    for i in range(MAX_PROGRESS_ROWS + 10):
        m.on_event(
            event_pb2.Event(
                type=event_pb2.EVENT_TYPE_TASK_OUTPUT, task_id=f"{i:032x}", output_chunks=1
            )
        )
    rows = m.progress_rows()
    assert len(rows) == MAX_PROGRESS_ROWS
    assert rows[-1].task_id == f"{MAX_PROGRESS_ROWS + 9:032x}"  # the oldest reporters left
