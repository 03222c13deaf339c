"""The parent fields of a SubmitTaskRequest (a child task spawned by a running task), checked
alike at the gateway edge and in the coordinator."""

from __future__ import annotations

from hivewire.v1 import task_pb2
from hivewire_services.common import principal
from hivewire_services.common.errors import InvalidArgument, PermissionDenied
from hivewire_services.common.validation import check_id

MAX_TOKEN = 128


def check_parent(req: task_pb2.SubmitTaskRequest) -> None:
    """The parent fields of a SubmitTaskRequest, when set (both or neither). An agent's token
    submits only children of the task it runs: the coordinator checks the attempt token."""
    if not req.parent_task_id and not req.parent_attempt_token:
        if principal.current().role == "agent":
            raise PermissionDenied(
                "an agent submits only child tasks of the task it runs (parent_task_id and"
                " parent_attempt_token)",
                reason="AGENT_SUBMITS_CHILDREN_ONLY",
            )
        return
    check_id(req.parent_task_id, "parent_task_id")
    if not req.parent_attempt_token:
        raise InvalidArgument(
            "parent_attempt_token is required with parent_task_id", field="parent_attempt_token"
        )
    if len(req.parent_attempt_token) > MAX_TOKEN:
        raise InvalidArgument(
            f"parent_attempt_token is longer than {MAX_TOKEN}", field="parent_attempt_token"
        )


def no_parents(req: task_pb2.SubmitTasksRequest) -> None:
    """A batch spawns no children: a child is submitted alone, with SubmitTask."""
    for i, t in enumerate(req.tasks):
        if t.parent_task_id or t.parent_attempt_token:
            raise InvalidArgument(
                "a child task is spawned with SubmitTask, not in a batch",
                field=f"tasks[{i}].parent_task_id",
            )
