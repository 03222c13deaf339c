"""Typed calls of the workflow scripts: each wrapper owns its script's KEYS and ARGV layout."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from hivewire.v1 import workflow_pb2
from hivewire_services.common import lua
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.workflow_spec import WorkflowDef, steps_to_json
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.tasks import tasklua
from hivewire_services.coordinator.tasks.tasklua import REQUEST_ID_TTL_SECONDS, Arg
from hivewire_services.coordinator.workflows.plan import Plan

_HERE = Path(__file__).parent


class LaunchOp(NamedTuple):
    """The head of an advance.lua 'L' op (LAUNCH_OP); `ntasks` (task id, payload) pairs follow."""

    step_id: str
    capability: str
    priority: int
    max_attempts: int
    labels: str
    timeout_ms: int
    is_map: str
    ntasks: int


def encode_plan(plan: Plan) -> list[Arg]:
    """advance.lua's ops: their count, then each op's letter and values (see the script)."""
    ops: list[Arg] = []
    n = 0
    for launch in plan.launches:
        s = launch.step
        n += 1
        labels = json.dumps(s.required_labels, sort_keys=True)
        is_map = "1" if s.map_over else "0"
        head = LaunchOp(
            s.step_id, s.capability, s.priority, s.max_attempts, labels, s.timeout_ms, is_map,
            len(launch.inputs),
        )  # fmt: skip
        ops += ["L", *head]
        for payload in launch.inputs:
            ops += [uuid.uuid4().hex, payload]
    for step_id, error in plan.fails:
        n += 1
        ops += ["F", step_id, error]
    for step_id in plan.skips:
        n += 1
        ops += ["S", step_id]
    for step_id in plan.cancels:
        n += 1
        ops += ["C", step_id]
    if plan.finish is not None:
        n += 1
        ops += ["W", plan.finish[0], plan.finish[1]]
    return [n, *ops]


class WorkflowScripts:
    """create.lua, record.lua, advance.lua and cancel.lua for one namespace."""

    def __init__(self, redis: Redis, keys: Keys, settings: CoordinatorSettings) -> None:
        self.keys = keys
        self.settings = settings
        self._create = lua.register(redis, _HERE / "create.lua")
        self._record = lua.register(redis, _HERE / "record.lua")
        self._advance = tasklua.register_path(
            redis, _HERE / "advance.lua", {"LAUNCH_OP": LaunchOp._fields}, context=False
        )
        self._cancel = lua.register(redis, _HERE / "cancel.lua")
        self.running_index = keys.workflows_by_state(workflow_pb2.WORKFLOW_STATE_RUNNING)

    async def create(
        self,
        now: int,
        workflow_id: str,
        defn: WorkflowDef,
        request_key: str,
        traceparent: str,
        tenant: str = "",
    ) -> str:
        """A new workflow's id, or the one created before for the same request key."""
        step_ids = [s.step_id for s in defn.steps]
        got = await self._create(
            keys=[
                self.keys.workflows_index,
                self.keys.workflow_seq,
                self.keys.events,
                self.running_index,
                self.keys.workflow(workflow_id),
            ],
            args=[
                self.keys.prefix,
                now,
                self.settings.events_maxlen,
                workflow_id,
                request_key,
                REQUEST_ID_TTL_SECONDS,
                defn.name,
                defn.failure_policy,
                defn.command,
                defn.request_id,
                steps_to_json(defn.steps),
                len(step_ids),
                *step_ids,
                traceparent,
                tenant,
            ],
        )
        return got.decode() if isinstance(got, bytes) else str(got)

    async def record(self, now: int, workflow_id: str, task_ids: Sequence[str]) -> int:
        """How many of these tasks' outcomes were recorded now."""
        got = await self._record(
            keys=[self.keys.workflow(workflow_id)],
            args=[self.keys.prefix, now, workflow_id, len(task_ids), *task_ids],
        )
        return int(got)

    async def advance(self, now: int, workflow_id: str, plan: Plan) -> int:
        """How many of the plan's decisions applied."""
        got = await self._advance(
            keys=[
                *tasklua.creation_keys(self.keys),
                self.keys.workflow(workflow_id),
                self.keys.pending_capabilities,
                self.running_index,
                self.keys.workflows_finished,
            ],
            args=[
                *tasklua.creation_args(self.keys, self.settings, now),
                workflow_id,
                *encode_plan(plan),
            ],
        )
        return int(got)

    async def cancel(self, workflow_id: str) -> int:
        """The workflow's state (0 when it does not exist)."""
        return int(await self._cancel(keys=[self.keys.workflow(workflow_id)]))
