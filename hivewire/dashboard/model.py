"""What the dashboard shows, kept apart from Textual: a pure, bounded model fed by the feed."""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from hivewire.core.agent_states import is_live_agent
from hivewire.core.convert import agent_state_name, event_to_dict, iso_time
from hivewire.v1 import agent_pb2, event_pb2, flow_pb2, stats_pb2, workflow_pb2

HISTORY = 60  # throughput samples kept per capability (one per stats frame)
LOG_LINES = 500  # event lines kept (and held while paused)
MAX_CAPABILITIES = 200
MAX_PROGRESS_ROWS = 50  # running tasks shown with their progress (the most recent reporters)

# Progress and output reports update the running-tasks panel; logged, they would drown the log.
_NOT_LOGGED = frozenset({event_pb2.EVENT_TYPE_TASK_PROGRESS, event_pb2.EVENT_TYPE_TASK_OUTPUT})
# A task leaves the running-tasks panel when its attempt ends.
_ATTEMPT_ENDED = frozenset(
    {
        event_pb2.EVENT_TYPE_TASK_SUCCEEDED,
        event_pb2.EVENT_TYPE_TASK_FAILED,
        event_pb2.EVENT_TYPE_TASK_CANCELLED,
        event_pb2.EVENT_TYPE_TASK_TIMED_OUT,
        event_pb2.EVENT_TYPE_TASK_RETRYING,
        event_pb2.EVENT_TYPE_TASK_RECLAIMED,
    }
)
_STEP_DONE = frozenset(
    {
        workflow_pb2.STEP_STATE_SUCCEEDED,
        workflow_pb2.STEP_STATE_FAILED,
        workflow_pb2.STEP_STATE_CANCELLED,
        workflow_pb2.STEP_STATE_SKIPPED,
    }
)


@dataclass(frozen=True)
class AgentRow:
    agent_id: str
    name: str
    state: str
    capabilities: str
    slots: str
    last_heartbeat: str


@dataclass(frozen=True)
class QueueRow:
    capability: str
    depth: int
    rate: float
    agents: int
    history: tuple[float, ...]


@dataclass(frozen=True)
class ProgressRow:
    """A running task that reported progress or output: `fraction` None when unknown."""

    task_id: str
    capability: str
    fraction: float | None
    message: str
    lines: int


@dataclass(frozen=True)
class WorkflowRow:
    workflow_id: str
    name: str
    done: int
    total: int


def _ago(iso: str | None, now: dt.datetime) -> str:
    if not iso:
        return "-"
    seconds = (now - dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))).total_seconds()
    return f"{max(0.0, seconds):.1f}s ago"


def compact_line(event: event_pb2.Event) -> str:
    """`HH:MM:SS.mmm TYPE capability task=… agent=… …` with ids shortened to 8 characters."""
    d = event_to_dict(event)
    when = (d["time"] or "")[11:23] or "-"
    parts = [when, f"{d['type']:<17}", f"{d['capability'] or '-':<10}"]
    for key in ("task_id", "workflow_id", "agent_id"):
        if d[key]:
            parts.append(f"{key.removesuffix('_id')}={d[key][:8]}")
    if d["attempt"]:
        parts.append(f"attempt={d['attempt']}")
    if d["message"]:
        parts.append(d["message"][:80])
    return " ".join(parts)


def rate_limit_text(u: flow_pb2.RateLimitUsage) -> str:
    """A rate limit for the header: "openai 1500/200000 per 60s, 3 waiting"."""
    text = (
        f"{u.limit.name} {u.used}/{u.limit.limit} per {u.limit.window.ToMilliseconds() / 1000:g}s"
    )
    return text + (f", {u.waiting_tasks} waiting" if u.waiting_tasks else "")


def _ms(d: object) -> str:
    nanos = int(d.ToNanoseconds())  # type: ignore[attr-defined]
    return f"{nanos / 1e6:.0f}ms" if nanos < 10**10 else f"{nanos / 1e9:.0f}s"


@dataclass
class DashboardModel:
    """State of the screen. `filter` narrows every panel to rows whose text contains it."""

    agents: list[agent_pb2.Agent] = field(default_factory=list)
    stats: stats_pb2.Stats | None = None
    workflows: list[workflow_pb2.Workflow] = field(default_factory=list)
    workflows_available: bool = True
    history: dict[str, deque[float]] = field(default_factory=dict)
    log: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    held: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    cursors: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    last_cursor: str = ""
    paused: bool = False
    filter: str = ""
    connected: bool = False
    reconnects: int = 0
    events_seen: int = 0
    log_total: int = 0  # lines ever added to `log` (the app writes the ones it has not)
    progress: OrderedDict[str, ProgressRow] = field(default_factory=OrderedDict)

    def on_stats(self, stats: stats_pb2.Stats) -> None:
        self.stats = stats
        for cap in stats.capabilities:
            if cap.capability not in self.history and len(self.history) >= MAX_CAPABILITIES:
                continue
            series = self.history.setdefault(cap.capability, deque(maxlen=HISTORY))
            series.append(cap.throughput_per_second)

    def on_event(self, event: event_pb2.Event) -> None:
        """Add an event to the log (held while paused); snapshot events are not logged."""
        if event.snapshot:
            return
        self.events_seen += 1
        self.last_cursor = event.cursor
        self.cursors.append(event.cursor)
        self._track_progress(event)
        if event.type in _NOT_LOGGED:
            return
        if self.paused:
            self.held.append(compact_line(event))
        else:
            self.log.append(compact_line(event))
            self.log_total += 1

    def _track_progress(self, event: event_pb2.Event) -> None:
        if event.type in _ATTEMPT_ENDED:
            self.progress.pop(event.task_id, None)
            return
        if event.type not in _NOT_LOGGED:
            return
        row = self.progress.pop(event.task_id, None)
        fraction, message, lines = (row.fraction, row.message, row.lines) if row else (None, "", 0)
        if event.type == event_pb2.EVENT_TYPE_TASK_PROGRESS:
            p = event.progress  # the whole progress, not a change
            fraction = p.fraction if p.HasField("fraction") else None
            message = p.message
        else:
            lines += event.output_chunks
        self.progress[event.task_id] = ProgressRow(
            event.task_id, event.capability, fraction, message, lines
        )
        while len(self.progress) > MAX_PROGRESS_ROWS:
            self.progress.popitem(last=False)

    def toggle_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self.log.extend(self.held)
            self.log_total += len(self.held)
            self.held.clear()

    def keep(self, text: str) -> bool:
        return not self.filter or self.filter.lower() in text.lower()

    def agent_rows(self, now: dt.datetime | None = None) -> list[AgentRow]:
        """Live agents first, then OFFLINE ones (each group in the order listed): however many
        agents died, the live ones head the panel."""
        now = now or dt.datetime.now(dt.UTC)
        agents = sorted(self.agents, key=lambda a: not is_live_agent(a.state))
        rows = [
            AgentRow(
                a.agent_id[:12],
                a.name,
                agent_state_name(a.state),
                ",".join(a.capabilities),
                f"{a.in_flight}/{a.max_concurrency}",
                _ago(iso_time(a, "last_heartbeat_time"), now),
            )
            for a in agents
        ]
        return [r for r in rows if self.keep(f"{r.agent_id} {r.name} {r.state} {r.capabilities}")]

    def queue_rows(self) -> list[QueueRow]:
        if self.stats is None:
            return []
        return [
            QueueRow(
                c.capability,
                c.queue_depth,
                c.throughput_per_second,
                c.agents,
                tuple(self.history.get(c.capability, ())),
            )
            for c in self.stats.capabilities
            if self.keep(c.capability)
        ]

    def workflow_rows(self) -> list[WorkflowRow]:
        rows = []
        for wf in self.workflows:
            if wf.state != workflow_pb2.WORKFLOW_STATE_RUNNING:
                continue
            done = sum(1 for s in wf.steps if s.state in _STEP_DONE)
            rows.append(WorkflowRow(wf.workflow_id, wf.name or wf.workflow_id[:12], done,
                                    len(wf.steps)))  # fmt: skip
        return [r for r in rows if self.keep(f"{r.workflow_id} {r.name}")]

    def progress_rows(self) -> list[ProgressRow]:
        """Running tasks that reported progress or output, most recent reporter last."""
        return [
            r
            for r in self.progress.values()
            if self.keep(f"{r.task_id} {r.capability} {r.message}")
        ]

    def log_lines(self) -> list[str]:
        return [line for line in self.log if self.keep(line)]

    def totals(self) -> str:
        """One line for the header: agents, tasks by state, rates, latencies, health."""
        link = "connected" if self.connected else "reconnecting…"
        if self.stats is None:
            return f"hivewire · {link}"
        s = self.stats
        online = s.agents_by_state.get("ONLINE", 0)
        tasks = "tasks " + " ".join(
            f"{name.lower()} {s.tasks_by_state.get(name, 0)}"
            for name in ("PENDING", "RUNNING", "SUCCEEDED", "FAILED")
        )
        parts = [
            f"{online} agents",
            tasks,
            f"{s.events_per_second:.0f} ev/s",
            f"e2e p50 {_ms(s.end_to_end_latency.p50)} p99 {_ms(s.end_to_end_latency.p99)}",
            f"retries {s.retries} dead {s.dead_letters}",
            f"workflows {s.workflows_running}",
            *(rate_limit_text(u) for u in s.rate_limits),
            link + (" · PAUSED" if self.paused else ""),
            f"filter '{self.filter}'" if self.filter else "",
        ]
        return " · ".join(p for p in parts if p)
