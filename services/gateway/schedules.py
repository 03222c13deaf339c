"""Edge checks of the schedule RPCs, and the expansion of a command target into its workflow."""

from __future__ import annotations

from hivewire.v1 import schedule_pb2
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.validation import check_page_size, check_schedule_name
from hivewire_services.gateway import checks
from hivewire_services.gateway.commands import CommandCatalog, commands_dir
from hivewire_services.gateway.config import GatewaySettings

NamedRequest = (
    schedule_pb2.GetScheduleRequest
    | schedule_pb2.PauseScheduleRequest
    | schedule_pb2.ResumeScheduleRequest
    | schedule_pb2.TriggerScheduleRequest
    | schedule_pb2.DeleteScheduleRequest
)


def schedule_name(req: NamedRequest, settings: GatewaySettings) -> None:
    check_schedule_name(req.name)


def list_schedules(req: schedule_pb2.ListSchedulesRequest, settings: GatewaySettings) -> None:
    check_page_size(req.page_size)
    if req.page_token:
        check_schedule_name(req.page_token, "page_token")


def expand(
    req: schedule_pb2.CreateScheduleRequest, settings: GatewaySettings
) -> schedule_pb2.CreateScheduleRequest:
    """The request the coordinator gets: a command target rendered from the catalog into the
    workflow it runs (with `command` set), so the coordinator needs no catalog."""
    check_schedule_name(req.schedule.name, "schedule.name")
    target = req.schedule.target
    kind = target.WhichOneof("kind")
    if kind == "task":
        checks.check_submit(target.task, settings, "schedule.target.task.")
        return req
    if kind == "workflow":
        if target.workflow.command:
            raise InvalidArgument(
                "command is set only from a command target; leave it empty",
                field="schedule.target.workflow.command",
            )
        checks.submit_workflow(target.workflow, settings)
        return req
    if kind != "command":
        raise InvalidArgument(
            "a schedule needs a task, workflow or command", field="schedule.target"
        )
    checks.run_command(target.command, settings)
    catalog = CommandCatalog(commands_dir(settings.commands_dir))
    # the rendered workflow passed the catalog's checks and the coordinator checks it again
    workflow = catalog.render(
        target.command.name, dict(target.command.params), "", settings.max_payload_bytes
    )
    out = schedule_pb2.CreateScheduleRequest()
    out.CopyFrom(req)
    out.schedule.target.workflow.CopyFrom(workflow)
    return out
