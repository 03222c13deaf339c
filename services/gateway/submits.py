"""SubmitTask at the gateway: checked at the edge, then forwarded; calls that arrive while one
is in flight (from any client: Node, grpcurl, many processes) go to the coordinator together as
one SubmitTasks call as their caller (hivewire/core/submits.py: each keeps its own trace and its
own outcome). Spawns of children (parent_task_id) and calls made while spans are recorded (a
CLIENT span per forwarded call) go alone, as before."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, cast

from hivewire.core.coalesce import Coalescer
from hivewire.core.submits import submit_coalescer
from hivewire.core.tracing import new_traceparent, recording, traceparent_of
from hivewire.v1 import task_pb2
from hivewire_services.common import principal
from hivewire_services.common.principal import Principal
from hivewire_services.gateway import checks
from hivewire_services.gateway.upstream import Edge, Forward

Submits = Coalescer[task_pb2.SubmitTaskRequest, task_pb2.Task]


class SubmitEdge(Edge, Protocol):
    submits: Submits


class CoalescedSubmit(Forward[task_pb2.SubmitTaskRequest]):
    """The SubmitTask RPC (declared as `SubmitTask = CoalescedSubmit()`)."""

    def __init__(self) -> None:
        super().__init__(checks.check_submit)

    async def _call(self, servicer: Edge, request: task_pb2.SubmitTaskRequest, context: Any) -> Any:
        self._check(request, servicer.settings)
        if request.parent_task_id or servicer.direct is None or recording():
            return await self.send(servicer, request)
        if not request.traceparent:  # its own trace, whichever call carries it
            request.traceparent = traceparent_of() or new_traceparent()
        submits = cast(SubmitEdge, servicer).submits
        return task_pb2.SubmitTaskResponse(task=await submits.call(request))


def gateway_submits(servicer: SubmitEdge, one: Forward[Any], many: Forward[Any]) -> Submits:
    """The servicer's coalescer: alone through `one` (SubmitTask), together through `many`
    (SubmitTasks); every call for waiting callers goes as their principal (the on-behalf-of
    metadata the coordinator creates their tasks as)."""

    async def send_one(request: task_pb2.SubmitTaskRequest) -> task_pb2.Task:
        reply: task_pb2.SubmitTaskResponse = await one.send(servicer, request)
        return reply.task

    async def send_many(requests: Sequence[task_pb2.SubmitTaskRequest]) -> list[task_pb2.Task]:
        batch = task_pb2.SubmitTasksRequest(tasks=requests)
        reply: task_pb2.SubmitTasksResponse = await many.send(servicer, batch)
        return list(reply.tasks)

    def acting(who: Hashable) -> AbstractContextManager[Principal]:
        return principal.acting_as(cast(Principal, who))

    return submit_coalescer(
        send_one, send_many, key=principal.current, acting=acting,
        max_batch=servicer.settings.max_batch, name="gateway-submits",
    )  # fmt: skip
