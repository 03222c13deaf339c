"""Workflow storage: create, read, list, record task outcomes, apply plans; writes are Lua."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import cast

from hivewire.core.clock import now_ms
from hivewire.v1 import workflow_pb2
from hivewire_services.common import lua, principal, tenancy
from hivewire_services.common.errors import InvalidArgument, NotFound
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.store import RedisStore
from hivewire_services.common.validation import (
    check_id,
    check_page_size,
    parse_sequence_token,
)
from hivewire_services.common.workflow_spec import WorkflowDef
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.workflows.model import run_from_hash, workflow_to_proto
from hivewire_services.coordinator.workflows.plan import Plan, WorkflowRun
from hivewire_services.coordinator.workflows.scripts import WorkflowScripts
from hivewire_services.coordinator.workflows.tracing import start_workflow_trace

SCAN_PAGES = 20
"""Index pages one ListWorkflows call reads at most while filtering."""


@dataclass(frozen=True)
class WorkflowPage:
    workflows: list[workflow_pb2.Workflow]
    next_page_token: str


class WorkflowStore(RedisStore[CoordinatorSettings]):
    """Reads and writes workflows in Redis. Knows nothing of gRPC."""

    def __init__(self, redis: Redis, keys: Keys, settings: CoordinatorSettings) -> None:
        super().__init__(redis, keys, settings)
        self._scripts = WorkflowScripts(redis, keys, settings)
        self.running_index = self._scripts.running_index
        self._expire = lua.Expire(
            redis,
            keys.workflows_finished,
            keys.workflows_index,
            keys.workflow_prefix,
            keys.workflows_by_state_prefix,
            keys.tenant_workflows_prefix,
        )

    async def create(self, defn: WorkflowDef) -> str:
        """Store a validated workflow (steps WAITING); a known request_id yields its workflow."""
        workflow_id = uuid.uuid4().hex
        tenant = tenancy.creating_tenant()
        request_key = ""
        if defn.request_id:
            request_key = self.keys.workflow_request(
                tenancy.request_digest(tenant, defn.request_id)
            )
        traceparent = start_workflow_trace(workflow_id, defn.name)
        return await self._scripts.create(
            now_ms(), workflow_id, defn, request_key, traceparent, tenant
        )

    async def load(self, workflow_id: str) -> WorkflowRun | None:
        raw = cast(dict[bytes, bytes], await self.redis.hgetall(self.keys.workflow(workflow_id)))
        return run_from_hash(workflow_id, raw)

    async def record(self, workflow_id: str, task_ids: list[str]) -> int:
        """Record terminal outcomes of these tasks (idempotent). Returns how many were new."""
        if not task_ids:
            return 0
        self.keys.workflow(workflow_id)
        return await self._scripts.record(now_ms(), workflow_id, task_ids)

    async def advance(self, workflow_id: str, plan: Plan) -> int:
        """Apply a plan in one Lua call; each decision is re-checked there."""
        return await self._scripts.advance(now_ms(), workflow_id, plan)

    async def request_cancel(self, workflow_id: str) -> int:
        """Mark a running workflow for cancellation; returns its state (NotFound if none)."""
        await self.check_visible(workflow_id)
        state = await self._scripts.cancel(workflow_id)
        if state == 0:
            raise _not_found(workflow_id)
        return state

    async def check_visible(self, workflow_id: str) -> None:
        """NotFound, as for a missing workflow, unless it exists and the caller sees it (a
        workflow's tenant never changes, so this check may precede a change)."""
        check_id(workflow_id, "workflow_id")
        key = self.keys.workflow(workflow_id)
        state, tenant = await self.redis.hmget(key, ["state", "tenant"])
        if state is None or not tenancy.visible(tenant):
            raise _not_found(workflow_id)

    async def expire(self, cutoff_ms: int, limit: int = 1000) -> int:
        """Delete up to `limit` workflows that ended before the cutoff; returns how many."""
        return await self._expire(cutoff_ms, limit)

    async def running(self, limit: int = 1000) -> list[str]:
        """Ids of running workflows, oldest first (the resume sweep walks these)."""
        ids = await self.redis.zrange(self.running_index, 0, limit - 1)
        return [i.decode() for i in cast(list[bytes], ids)]

    async def get(self, workflow_id: str) -> workflow_pb2.Workflow:
        check_id(workflow_id, "workflow_id")
        run = await self.load(workflow_id)
        if run is None or not tenancy.visible(run.tenant):
            raise _not_found(workflow_id)
        return await self._with_live_tasks(run)

    async def _with_live_tasks(self, run: WorkflowRun) -> workflow_pb2.Workflow:
        """The proto, with agent and attempt of running steps read from their live tasks."""
        wf = workflow_to_proto(run)
        live = {
            tid: step
            for step in wf.steps
            if step.state == workflow_pb2.STEP_STATE_RUNNING
            for tid in step.task_ids
            if tid not in run.done
        }
        if not live:
            return wf
        async with self.redis.pipeline(transaction=False) as pipe:
            for tid in live:
                pipe.hmget(self.keys.task(tid), ["agent_id", "attempt"])
            rows = cast(list[list[bytes | None]], await pipe.execute())
        for step, (agent, attempt) in zip(live.values(), rows, strict=True):
            if agent:
                step.agent_id = agent.decode()
            if attempt and int(attempt) > step.attempt:
                step.attempt = int(attempt)
        return wf

    async def list(self, *, page_size: int, page_token: str, state: int) -> WorkflowPage:
        """Newest first, optionally one state; the page token is the last sequence seen.
        Steps come without their outputs (a page could otherwise be huge). A caller of one
        tenant walks its tenant's index (state filtered); the default tenant's workflows carry
        no tenant and are found in the global indexes. At most SCAN_PAGES index pages are read
        per call, so a filtered page may come back short, with a token to go on from."""
        size = check_page_size(page_size)
        if state and state not in workflow_pb2.WorkflowState.values():
            raise InvalidArgument(f"unknown state {state}", field="state")
        after = parse_sequence_token(page_token)
        before = "+inf" if after is None else f"({after}"
        index = self.keys.workflows_by_state(state) if state else self.keys.workflows_index
        only = tenancy.scope()
        if only is not None and only != principal.DEFAULT_TENANT:
            index = self.keys.tenant_workflows(only)
        out: list[workflow_pb2.Workflow] = []
        for _ in range(SCAN_PAGES):
            rows = cast(
                list[tuple[bytes, float]],
                await self.redis.zrevrangebyscore(
                    index, before, "-inf", start=0, num=size, withscores=True
                ),
            )
            if not rows:
                return WorkflowPage(out, "")
            async with self.redis.pipeline(transaction=False) as pipe:
                for wid, _ in rows:
                    pipe.hgetall(self.keys.workflow(wid.decode()))
                hashes = cast(list[dict[bytes, bytes]], await pipe.execute())
            for (wid, score), raw in zip(rows, hashes, strict=True):
                before = f"({int(score)}"
                run = run_from_hash(wid.decode(), raw)
                if run is None or (state and run.state != state):
                    continue
                if only is not None and tenancy.tenant_of(run.tenant) != only:
                    continue
                wf = workflow_to_proto(run)
                for step in wf.steps:  # outputs can be large: GetWorkflow has them
                    step.ClearField("output")
                out.append(wf)
                if len(out) == size:
                    return WorkflowPage(out, str(int(score)))
            if len(rows) < size:
                return WorkflowPage(out, "")
        return WorkflowPage(out, before[1:])


def _not_found(workflow_id: str) -> NotFound:
    """The one answer for a workflow that does not exist or that the caller may not see."""
    return NotFound(f"workflow {workflow_id} not found", reason="WORKFLOW_NOT_FOUND")
