"""`hivewire dashboard`: a Textual app over the gateway's streams (q quit, f filter, p pause)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Generic, TypeVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Input, ProgressBar, RichLog, Sparkline, Static

from hivewire.client import Client
from hivewire.dashboard.feed import Feed
from hivewire.dashboard.model import DashboardModel, ProgressRow, QueueRow, WorkflowRow
from hivewire.v1 import event_pb2

REFRESH_SECONDS = 0.25
AGENT_COLUMNS = ("AGENT", "NAME", "STATE", "CAPABILITIES", "SLOTS", "HEARTBEAT")


RowT = TypeVar("RowT")


class RowLine(Horizontal, Generic[RowT]):
    """A one-line panel entry that shows one row of the model."""

    def show(self, row: RowT) -> None:
        raise NotImplementedError


class QueueLine(RowLine[QueueRow]):
    """One capability: depth, rate, agents, and a throughput sparkline."""

    def compose(self) -> ComposeResult:
        yield Static(classes="label")
        yield Sparkline([], summary_function=max)

    def show(self, row: QueueRow) -> None:
        self.query_one(Static).update(
            f"{row.capability[:14]:<14} {row.depth:>5} queued {row.rate:>6.1f}/s {row.agents:>2}ag"
        )
        self.query_one(Sparkline).data = list(row.history) or [0.0]


class WorkflowLine(RowLine[WorkflowRow]):
    """One running workflow: name and steps done out of all."""

    def compose(self) -> ComposeResult:
        yield Static(classes="label")
        yield ProgressBar(show_eta=False)

    def show(self, row: WorkflowRow) -> None:
        self.query_one(Static).update(f"{row.name[:24]:<24} {row.done}/{row.total}")
        self.query_one(ProgressBar).update(total=max(row.total, 1), progress=row.done)


class TaskLine(RowLine[ProgressRow]):
    """One running task: capability, id, lines of output, message, and its progress."""

    def compose(self) -> ComposeResult:
        yield Static(classes="label")
        yield ProgressBar(show_eta=False)

    def show(self, row: ProgressRow) -> None:
        text = f"{row.capability[:12]:<12} {row.task_id[:8]} {row.lines:>5} lines {row.message}"
        self.query_one(Static).update(text[:44])
        # No fraction reported: an indeterminate bar.
        total = None if row.fraction is None else 100
        self.query_one(ProgressBar).update(total=total, progress=(row.fraction or 0) * 100)


class Dashboard(App[None]):
    """Agents, queues with sparklines, workflows and running tasks with progress bars, and the
    live event log."""

    TITLE = "hivewire"
    CSS = """
    #totals { dock: top; height: 1; background: $primary; color: $text; padding: 0 1; }
    #top { height: 40%; }
    #agents { width: 1fr; border: round $secondary; }
    #queues { width: 1fr; border: round $secondary; }
    #workflows { height: auto; max-height: 30%; border: round $secondary; }
    #tasks { height: auto; max-height: 30%; border: round $secondary; }
    #log { border: round $secondary; }
    QueueLine, WorkflowLine, TaskLine { height: 1; }
    QueueLine .label { width: 44; }
    WorkflowLine .label { width: 32; }
    TaskLine .label { width: 46; }
    Sparkline { width: 1fr; }
    #filter { dock: bottom; display: none; }
    #filter.shown { display: block; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("f", "filter", "Filter"),
        Binding("p", "pause", "Pause"),
        Binding("escape", "close_filter", "Close filter", show=False),
    ]

    def __init__(
        self,
        addr: str | None = None,
        *,
        stats_interval: float = 1.0,
        request: event_pb2.StreamEventsRequest | None = None,
    ) -> None:
        super().__init__()
        self.addr = addr
        self.model = DashboardModel()
        self.stats_interval = stats_interval
        self.request = request
        self.client: Client | None = None
        self.feed: Feed | None = None
        self._dirty = True
        self._written = 0
        self._queues: dict[str, RowLine[QueueRow]] = {}
        self._workflows: dict[str, RowLine[WorkflowRow]] = {}
        self._tasks: dict[str, RowLine[ProgressRow]] = {}

    def compose(self) -> ComposeResult:
        yield Static(self.model.totals(), id="totals")
        with Horizontal(id="top"):
            yield DataTable(id="agents", cursor_type="row", zebra_stripes=True)
            yield VerticalScroll(id="queues")
        yield Vertical(Static("no workflow running", id="no-workflows"), id="workflows")
        yield Vertical(Static("no task reporting progress", id="no-tasks"), id="tasks")
        yield RichLog(id="log", max_lines=500, wrap=False)
        yield Input(placeholder="filter every panel (enter applies, empty clears)", id="filter")
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one("#agents", DataTable).add_columns(*AGENT_COLUMNS)
        for selector, title in (
            ("#agents", "Agents"),
            ("#queues", "Queues (throughput)"),
            ("#workflows", "Workflows in progress"),
            ("#tasks", "Tasks in progress"),
            ("#log", "Events"),
        ):
            self.query_one(selector).border_title = title
        self.client = Client(self.addr)
        self.feed = Feed(
            self.client,
            self.model,
            self._changed,
            stats_interval=self.stats_interval,
            request=self.request,
        )
        self.feed.start()
        self.set_interval(REFRESH_SECONDS, self._refresh)

    async def on_unmount(self) -> None:
        if self.feed is not None:
            await self.feed.stop()
        if self.client is not None:
            await self.client.close()

    def _changed(self) -> None:
        self._dirty = True

    def _refresh(self, force: bool = False) -> None:
        self.query_one("#totals", Static).update(self.model.totals())
        if not (self._dirty or force) or (self.model.paused and not force):
            return
        self._dirty = False
        self._render_agents()
        self._render_queues()
        self._render_workflows()
        self._render_tasks()
        self._render_log(force)

    def _render_agents(self) -> None:
        table = self.query_one("#agents", DataTable)
        table.clear()
        for row in self.model.agent_rows():
            table.add_row(row.agent_id, row.name, row.state, row.capabilities, row.slots,
                          row.last_heartbeat)  # fmt: skip

    def _render_queues(self) -> None:
        box = self.query_one("#queues", VerticalScroll)
        rows = self.model.queue_rows()
        shown = {r.capability for r in rows}
        for row in rows:
            self._show_line(box, self._queues, row.capability, QueueLine, row)
        for cap, line in self._queues.items():
            line.display = cap in shown

    def _render_workflows(self) -> None:
        box = self.query_one("#workflows", Vertical)
        rows = self.model.workflow_rows()
        empty = self.query_one("#no-workflows", Static)
        empty.display = not rows
        if not self.model.workflows_available:
            empty.update("workflows are not offered by this gateway")
        for row in rows:
            self._show_line(box, self._workflows, row.workflow_id, WorkflowLine, row)
        for wf_id in set(self._workflows) - {r.workflow_id for r in rows}:
            self._workflows.pop(wf_id).remove()

    def _render_tasks(self) -> None:
        box = self.query_one("#tasks", Vertical)
        rows = self.model.progress_rows()
        self.query_one("#no-tasks", Static).display = not rows
        for row in rows:
            self._show_line(box, self._tasks, row.task_id, TaskLine, row)
        for task_id in set(self._tasks) - {r.task_id for r in rows}:
            self._tasks.pop(task_id).remove()

    def _show_line(
        self,
        box: Widget,
        lines: dict[str, RowLine[RowT]],
        key: str,
        make: Callable[[], RowLine[RowT]],
        row: RowT,
    ) -> None:
        """Update the line for `key`, or mount a new one and fill it after the refresh (its
        children exist only once it is composed)."""
        line = lines.get(key)
        if line is None:
            line = lines[key] = make()
            box.mount(line)
            self.call_after_refresh(line.show, row)
        else:
            line.show(row)

    def _render_log(self, rewrite: bool) -> None:
        log = self.query_one("#log", RichLog)
        total = self.model.log_total
        if rewrite:
            log.clear()
            for line in self.model.log_lines():
                log.write(line)
        else:
            fresh = list(self.model.log)[-min(total - self._written, len(self.model.log)) :]
            for line in fresh if total > self._written else []:
                if self.model.keep(line):
                    log.write(line)
        self._written = total

    def action_pause(self) -> None:
        self.model.toggle_pause()
        self._refresh(force=True)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.value = self.model.filter
        box.focus()

    def action_close_filter(self) -> None:
        self.query_one("#filter", Input).remove_class("shown")
        self.query_one("#agents").focus()

    def on_input_submitted(self, message: Input.Submitted) -> None:
        self.model.filter = message.value.strip()
        self.action_close_filter()
        self._refresh(force=True)
