"""The CoordinatorService servicer: unwraps each envelope, calls domain code, wraps the reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeAlias, TypeVar

from google.protobuf import message_factory
from google.protobuf.message import Message

from hivewire.v1 import (
    coordinator_pb2,
    coordinator_pb2_grpc,
    flow_pb2,
    operator_pb2,
    schedule_pb2,
    task_pb2,
    workflow_pb2,
)
from hivewire_services.common.rate_limits import usage_message
from hivewire_services.common.servicer_attrs import RpcAttribute
from hivewire_services.common.submission import ValidTask, validate_batch, validate_task
from hivewire_services.common.task_parent import check_parent, no_parents
from hivewire_services.common.workflow_spec import validate_workflow
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.schedules.firing import ScheduleFiring
from hivewire_services.coordinator.tasks.children import ChildTasks
from hivewire_services.coordinator.tasks.coalesce import SubmitCoalescer
from hivewire_services.coordinator.tasks.dead_letters import DeadLetters
from hivewire_services.coordinator.tasks.queues import Queues
from hivewire_services.coordinator.tasks.store import TaskStore
from hivewire_services.coordinator.workflows.engine import WorkflowEngine

# grpc ships no type hints, so its context type is Any to mypy.
Context: TypeAlias = Any
Req = TypeVar("Req", bound=Message)
Req_co = TypeVar("Req_co", bound=Message, covariant=True)
_METHODS = coordinator_pb2.DESCRIPTOR.services_by_name["CoordinatorService"].methods_by_name


class Envelope(Protocol[Req_co]):
    """A `CoordinatorService...Request`: the public request inside."""

    @property
    def request(self) -> Req_co: ...


class enveloped(RpcAttribute[Envelope[Req]]):  # noqa: N801 (used as a decorator)
    """Turns `async def Rpc(self, request: PublicRequest) -> PublicResponse` into the RPC that
    takes and answers the RPC's envelopes (the reply envelope is the one the proto declares).

    mypy checks the public request type against the generated servicer's envelope.
    """

    def __init__(self, method: Callable[[Any, Req], Awaitable[Message]]) -> None:
        self._method = method
        reply = _METHODS[method.__name__].output_type
        self._reply: Callable[..., Message] = message_factory.GetMessageClass(reply)

    async def _call(self, servicer: object, envelope: Envelope[Req], context: Any) -> Message:
        return self._reply(response=await self._method(servicer, envelope.request))


class CoordinatorService(coordinator_pb2_grpc.CoordinatorServiceServicer):
    """Tasks, dead letters, workflows, schedules and queues; the server sets `workflows`,
    `schedules` and `queues` before serving."""

    workflows: WorkflowEngine
    schedules: ScheduleFiring
    queues: Queues

    def __init__(
        self, store: TaskStore, settings: CoordinatorSettings, on_retried: Callable[[], None]
    ) -> None:
        self.store = store
        self.settings = settings
        self.dead_letters = DeadLetters(store, store.redis, store.keys, settings)
        self.children = ChildTasks(store.redis, store.keys, settings, store)
        # The store wakes the scheduler for what it creates; a retried dead letter is re-queued.
        self._on_retried = on_retried
        self.unary_submits = SubmitCoalescer(store.submit_each, settings.max_batch)

    async def _submit(self, specs: list[ValidTask]) -> list[task_pb2.Task]:
        return await self.store.submit(specs)

    @enveloped
    async def SubmitTask(self, request: task_pb2.SubmitTaskRequest) -> task_pb2.SubmitTaskResponse:
        spec = validate_task(request, self.settings)
        check_parent(request)
        if request.parent_task_id:
            task = await self.children.spawn(
                spec, request.parent_task_id, request.parent_attempt_token
            )
        elif spec.rate_limit_units:  # its units are checked (and refused) on its own
            [task] = await self._submit([spec])
        else:
            task = await self.unary_submits.submit(spec)
        return task_pb2.SubmitTaskResponse(task=task)

    @enveloped
    async def SubmitTasks(
        self, request: task_pb2.SubmitTasksRequest
    ) -> task_pb2.SubmitTasksResponse:
        no_parents(request)
        tasks = await self._submit(validate_batch(list(request.tasks), self.settings))
        return task_pb2.SubmitTasksResponse(tasks=tasks)

    @enveloped
    async def GetTask(self, request: task_pb2.GetTaskRequest) -> task_pb2.GetTaskResponse:
        return task_pb2.GetTaskResponse(task=await self.store.get(request.task_id))

    @enveloped
    async def ListTasks(self, request: task_pb2.ListTasksRequest) -> task_pb2.ListTasksResponse:
        page = await self.store.list(
            page_size=request.page_size,
            page_token=request.page_token,
            state=request.state,
            capability=request.capability,
        )
        return task_pb2.ListTasksResponse(tasks=page.tasks, next_page_token=page.next_page_token)

    @enveloped
    async def CancelTask(self, request: task_pb2.CancelTaskRequest) -> task_pb2.CancelTaskResponse:
        task = await self.store.cancel(request.task_id)
        await self.children.cancel_children(request.task_id)
        return task_pb2.CancelTaskResponse(task=task)

    @enveloped
    async def ListDeadLetters(
        self, request: task_pb2.ListDeadLettersRequest
    ) -> task_pb2.ListDeadLettersResponse:
        page = await self.dead_letters.list(
            page_size=request.page_size, page_token=request.page_token
        )
        return task_pb2.ListDeadLettersResponse(
            dead_letters=page.dead_letters, next_page_token=page.next_page_token
        )

    @enveloped
    async def RetryDeadLetter(
        self, request: task_pb2.RetryDeadLetterRequest
    ) -> task_pb2.RetryDeadLetterResponse:
        task = await self.dead_letters.retry(request.dead_letter_id)
        self._on_retried()
        return task_pb2.RetryDeadLetterResponse(task=task)

    @enveloped
    async def SetRateLimit(
        self, request: flow_pb2.SetRateLimitRequest
    ) -> flow_pb2.SetRateLimitResponse:
        limit = request.limit
        window_ms = limit.window.ToMilliseconds() if limit.HasField("window") else 0
        await self.store.rate_limits.set(limit.name, limit.limit, window_ms)
        return flow_pb2.SetRateLimitResponse(limit=limit)

    @enveloped
    async def ListRateLimits(
        self, request: flow_pb2.ListRateLimitsRequest
    ) -> flow_pb2.ListRateLimitsResponse:
        return flow_pb2.ListRateLimitsResponse(
            limits=[usage_message(u) for u in await self.store.rate_limits.list()]
        )

    @enveloped
    async def DeleteRateLimit(
        self, request: flow_pb2.DeleteRateLimitRequest
    ) -> flow_pb2.DeleteRateLimitResponse:
        await self.store.rate_limits.delete(request.name)
        return flow_pb2.DeleteRateLimitResponse()

    @enveloped
    async def SubmitWorkflow(
        self, request: workflow_pb2.SubmitWorkflowRequest
    ) -> workflow_pb2.SubmitWorkflowResponse:
        spec = validate_workflow(request, self.settings)
        await self.store.rate_limits.check_units(
            (f"steps[{i}].", s.rate_limit_units) for i, s in enumerate(spec.steps)
        )
        workflow = await self.workflows.submit(spec)
        return workflow_pb2.SubmitWorkflowResponse(workflow=workflow)

    @enveloped
    async def GetWorkflow(
        self, request: workflow_pb2.GetWorkflowRequest
    ) -> workflow_pb2.GetWorkflowResponse:
        workflow = await self.workflows.store.get(request.workflow_id)
        return workflow_pb2.GetWorkflowResponse(workflow=workflow)

    @enveloped
    async def CancelWorkflow(
        self, request: workflow_pb2.CancelWorkflowRequest
    ) -> workflow_pb2.CancelWorkflowResponse:
        workflow = await self.workflows.cancel(request.workflow_id)
        return workflow_pb2.CancelWorkflowResponse(workflow=workflow)

    @enveloped
    async def SignalWorkflow(
        self, request: workflow_pb2.SignalWorkflowRequest
    ) -> workflow_pb2.SignalWorkflowResponse:
        workflow = await self.workflows.signal(
            request.workflow_id, request.step_id, request.payload
        )
        return workflow_pb2.SignalWorkflowResponse(workflow=workflow)

    @enveloped
    async def RetryWorkflow(
        self, request: workflow_pb2.RetryWorkflowRequest
    ) -> workflow_pb2.RetryWorkflowResponse:
        workflow = await self.workflows.retry(request.workflow_id)
        return workflow_pb2.RetryWorkflowResponse(workflow=workflow)

    @enveloped
    async def ListWorkflows(
        self, request: workflow_pb2.ListWorkflowsRequest
    ) -> workflow_pb2.ListWorkflowsResponse:
        page = await self.workflows.store.list(
            page_size=request.page_size, page_token=request.page_token, state=request.state
        )
        return workflow_pb2.ListWorkflowsResponse(
            workflows=page.workflows, next_page_token=page.next_page_token
        )

    @enveloped
    async def CreateSchedule(
        self, request: schedule_pb2.CreateScheduleRequest
    ) -> schedule_pb2.CreateScheduleResponse:
        schedule = await self.schedules.store.create(request.schedule)
        return schedule_pb2.CreateScheduleResponse(schedule=schedule)

    @enveloped
    async def GetSchedule(
        self, request: schedule_pb2.GetScheduleRequest
    ) -> schedule_pb2.GetScheduleResponse:
        return schedule_pb2.GetScheduleResponse(
            schedule=await self.schedules.store.get(request.name)
        )

    @enveloped
    async def ListSchedules(
        self, request: schedule_pb2.ListSchedulesRequest
    ) -> schedule_pb2.ListSchedulesResponse:
        page = await self.schedules.store.list(
            page_size=request.page_size, page_token=request.page_token
        )
        return schedule_pb2.ListSchedulesResponse(
            schedules=page.schedules, next_page_token=page.next_page_token
        )

    @enveloped
    async def PauseSchedule(
        self, request: schedule_pb2.PauseScheduleRequest
    ) -> schedule_pb2.PauseScheduleResponse:
        schedule = await self.schedules.store.pause(request.name)
        return schedule_pb2.PauseScheduleResponse(schedule=schedule)

    @enveloped
    async def ResumeSchedule(
        self, request: schedule_pb2.ResumeScheduleRequest
    ) -> schedule_pb2.ResumeScheduleResponse:
        schedule = await self.schedules.store.resume(request.name)
        return schedule_pb2.ResumeScheduleResponse(schedule=schedule)

    @enveloped
    async def TriggerSchedule(
        self, request: schedule_pb2.TriggerScheduleRequest
    ) -> schedule_pb2.TriggerScheduleResponse:
        schedule = await self.schedules.trigger(request.name)
        return schedule_pb2.TriggerScheduleResponse(schedule=schedule)

    @enveloped
    async def DeleteSchedule(
        self, request: schedule_pb2.DeleteScheduleRequest
    ) -> schedule_pb2.DeleteScheduleResponse:
        await self.schedules.store.delete(request.name)
        return schedule_pb2.DeleteScheduleResponse()

    @enveloped
    async def PauseQueue(
        self, request: operator_pb2.PauseQueueRequest
    ) -> operator_pb2.PauseQueueResponse:
        return operator_pb2.PauseQueueResponse(queue=await self.queues.pause(request.capability))

    @enveloped
    async def ResumeQueue(
        self, request: operator_pb2.ResumeQueueRequest
    ) -> operator_pb2.ResumeQueueResponse:
        queue = await self.queues.resume(request.capability)
        return operator_pb2.ResumeQueueResponse(queue=queue)

    @enveloped
    async def ListQueues(
        self, request: operator_pb2.ListQueuesRequest
    ) -> operator_pb2.ListQueuesResponse:
        return operator_pb2.ListQueuesResponse(queues=await self.queues.list())
