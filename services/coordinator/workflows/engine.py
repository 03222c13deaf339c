"""The workflow engine: advances workflows when their tasks finish, and after a restart.

The task scripts append a `workflow-updates` entry when a workflow task ends. The engine reads
that stream through the consumer group `workflow-engine` (entries a dead coordinator read and
never acknowledged are taken over with XAUTOCLAIM), reconciles each workflow named, then
acknowledges. Reconciling is idempotent and needs nothing from the entry but the workflow id:
it records every finished task of the workflow's running steps (record.lua), computes a plan
(plan.py) and applies it (advance.lua), which re-checks every decision. A sweep of every
running workflow at start and every `workflow_sweep_interval` (a safety net, half a minute by
default) makes progress even if an entry was lost, so a coordinator killed at any point
resumes its workflows and no step runs twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from hivewire.core.clock import now_ms
from hivewire.v1 import workflow_pb2
from hivewire_services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import REDIS_UNAVAILABLE, Redis
from hivewire_services.common.streams import Entry, GroupOptions, StreamConsumer, ack_and_delete
from hivewire_services.common.workflow_spec import WorkflowDef
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.tasks.children import ChildTasks
from hivewire_services.coordinator.tasks.store import TaskStore
from hivewire_services.coordinator.workflows.controls import (
    fire_timer,
    retry_workflow,
    signal_step,
)
from hivewire_services.coordinator.workflows.inputs import InputLimits
from hivewire_services.coordinator.workflows.plan import Plan, WorkflowRun, plan
from hivewire_services.coordinator.workflows.store import WorkflowStore
from hivewire_services.coordinator.workflows.timers import WorkflowTimers
from hivewire_services.coordinator.workflows.tracing import record_workflow_advance
from hivewire_services.coordinator.workflows.wait_scripts import WaitScripts

logger = logging.getLogger(__name__)

WORKFLOW_GROUP = "workflow-engine"
EXPIRE_EVERY_S = 60.0


class WorkflowEngine(StreamConsumer):
    """Submits, cancels and advances workflows; several coordinators may run one each."""

    name = "workflow engine"

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        settings: CoordinatorSettings,
        tasks: TaskStore,
        consumer: str,
        on_launch: Callable[[], None],
    ) -> None:
        # handle() acknowledges once every workflow named is reconciled.
        options = GroupOptions(
            keys.workflow_updates, WORKFLOW_GROUP, consumer, claim_idle=settings.workflow_claim_idle
        )
        super().__init__(redis, options)
        self.keys = keys
        self.settings = settings
        self.tasks = tasks
        self.store = WorkflowStore(redis, keys, settings)
        self._on_launch = on_launch
        self._limits = InputLimits.of(
            settings, settings.workflow_max_map, settings.workflow_max_map_bytes
        )
        self.waits = WaitScripts(redis, keys, settings)
        self.children = ChildTasks(redis, keys, settings, tasks)
        self.timers = WorkflowTimers(redis, keys, self.fire, settings.workflow_sweep_interval)
        self.reconciled = 0
        self._last_sweep = float("-inf")
        self._last_expire = float("-inf")

    async def submit(self, defn: WorkflowDef) -> workflow_pb2.Workflow:
        """Store the workflow, launch its root steps, return it."""
        workflow_id = await self.store.create(defn)
        await self.reconcile(workflow_id)
        return await self.store.get(workflow_id)

    async def cancel(self, workflow_id: str) -> workflow_pb2.Workflow:
        """Cancel a running workflow: no more launches, running tasks cancelled, CANCELLED."""
        state = await self.store.request_cancel(workflow_id)
        if state != workflow_pb2.WORKFLOW_STATE_RUNNING:
            name = workflow_pb2.WorkflowState.Name(state)  # type: ignore[arg-type]
            raise FailedPrecondition(
                f"workflow {workflow_id} already finished ({name})",
                reason="WORKFLOW_ALREADY_FINISHED",
            )
        await self.reconcile(workflow_id)
        return await self.store.get(workflow_id)

    async def reconcile(self, workflow_id: str, finished: list[str] | None = None) -> None:
        """Bring one workflow up to date with its tasks. Safe to repeat or run concurrently.

        `finished` names the tasks a notification reported; without it every unrecorded task
        of the running steps is checked (the sweep, and after submit or cancel).
        """
        self.reconciled += 1
        run = await self.store.load(workflow_id)
        if run is None or run.state != workflow_pb2.WORKFLOW_STATE_RUNNING:
            return
        await self.store.record(workflow_id, run.live_tasks() if finished is None else finished)
        for _ in range(len(run.defn.steps) + 2):
            run = await self.store.load(workflow_id)
            if run is None or run.state != workflow_pb2.WORKFLOW_STATE_RUNNING:
                return
            decided = plan(run, self._limits)
            if decided.empty:
                return
            # Cancel tasks before the step and workflow states say so: after a crash in
            # between, the replay cancels again (idempotent) rather than leaving tasks running.
            for task_id in decided.cancel_tasks:
                with contextlib.suppress(NotFound, FailedPrecondition):
                    await self.tasks.cancel(task_id)
                await self.children.cancel_children(task_id)
            await self.store.advance(workflow_id, decided)
            if decided.parks:
                due = await self.waits.park(now_ms(), workflow_id, decided.parks)
                self.timers.due_at(due)
            _trace_advance(run, decided)
            if decided.launches:
                self._on_launch()
            if decided.finish is not None:
                return

    async def signal(self, workflow_id: str, step_id: str, payload: bytes) -> workflow_pb2.Workflow:
        """Deliver a signal to a step waiting for one (controls.py checks and maps)."""
        await signal_step(self, workflow_id, step_id, payload)
        await self.reconcile(workflow_id)
        return await self.store.get(workflow_id)

    async def retry(self, workflow_id: str) -> workflow_pb2.Workflow:
        """Re-run a FAILED or CANCELLED workflow from its failure."""
        await retry_workflow(self, workflow_id)
        await self.reconcile(workflow_id)
        return await self.store.get(workflow_id)

    async def fire(self, workflow_id: str, step_id: str) -> None:
        """A due timer: wake the sleep step or time the signal step out, then advance."""
        await fire_timer(self, workflow_id, step_id)
        await self.reconcile(workflow_id)

    async def sweep(self) -> None:
        """Reconcile every running workflow (at start, then now and then)."""
        for workflow_id in await self.store.running():
            try:
                await self.reconcile(workflow_id)
            except REDIS_UNAVAILABLE:
                raise
            except Exception:
                logger.exception("workflow %s could not advance", workflow_id)

    async def expire(self) -> None:
        """Delete workflows that ended longer ago than the task retention period."""
        cutoff = now_ms() - int(self.settings.task_retention_seconds * 1000)
        while await self.store.expire(cutoff) > 0:
            pass

    async def before_read(self) -> float:
        """Between reads: the sweep (at start, then every interval) and retention; returns
        the seconds until the next of them."""
        now = asyncio.get_running_loop().time()
        sweep_every = self.settings.workflow_sweep_interval
        if now - self._last_sweep >= sweep_every:
            self._last_sweep = now
            await self.sweep()
        if now - self._last_expire >= EXPIRE_EVERY_S:
            self._last_expire = now
            await self.expire()
        return min(self._last_sweep + sweep_every, self._last_expire + EXPIRE_EVERY_S) - now

    async def handle(self, entries: list[Entry]) -> None:
        """Reconcile each workflow named once, then acknowledge and delete the entries."""
        finished: dict[str, list[str]] = {}
        for _, fields in entries:
            wid = fields.get(b"workflow_id", b"").decode()
            try:
                self.keys.workflow(wid)
            except InvalidArgument:
                logger.warning("dropping workflow update with bad workflow_id %r", wid[:40])
                continue
            finished.setdefault(wid, []).append(fields.get(b"task_id", b"").decode())
        for wid, task_ids in finished.items():
            try:
                await self.reconcile(wid, task_ids)
            except REDIS_UNAVAILABLE:
                raise  # not acknowledged: read again once Redis is back
            except Exception:
                # A workflow that cannot advance must not block the others; the sweep retries it.
                logger.exception("workflow %s could not advance", wid)
        entry_ids = [e[0] for e in entries]
        if entry_ids:
            await ack_and_delete(self.redis, self.keys.workflow_updates, WORKFLOW_GROUP, entry_ids)


def _trace_advance(run: WorkflowRun, decided: Plan) -> None:
    """A short span per advance under the workflow's span (free when tracing is off)."""
    if decided.launches:
        steps = ",".join(launch.step.step_id for launch in decided.launches)
        record_workflow_advance(
            run.traceparent, run.workflow_id, "steps released", attributes={"hivewire.steps": steps}
        )
    if decided.finish is not None:
        state = workflow_pb2.WorkflowState.Name(decided.finish[0])  # type: ignore[arg-type]
        what = f"workflow {state.removeprefix('WORKFLOW_STATE_')}"
        record_workflow_advance(run.traceparent, run.workflow_id, what)
