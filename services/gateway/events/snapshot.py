"""Snapshot events: the current agents and unfinished tasks as `snapshot=True` events."""

from __future__ import annotations

from collections.abc import AsyncIterator

from hivewire.core.agent_states import is_live_agent
from hivewire.core.clock import set_ms
from hivewire.v1 import agent_pb2, event_pb2, task_pb2
from hivewire_services.gateway.events.hub import EventFilter
from hivewire_services.gateway.stats.state_reader import (
    AgentView,
    StateReader,
    TaskView,
)

_TASK_EVENT = {
    task_pb2.TASK_STATE_SCHEDULED: event_pb2.EVENT_TYPE_TASK_SCHEDULED,
    task_pb2.TASK_STATE_PENDING: event_pb2.EVENT_TYPE_TASK_SUBMITTED,
    task_pb2.TASK_STATE_ASSIGNED: event_pb2.EVENT_TYPE_TASK_ASSIGNED,
    task_pb2.TASK_STATE_RUNNING: event_pb2.EVENT_TYPE_TASK_STARTED,
}


def agent_event(agent: AgentView, flt: EventFilter) -> event_pb2.Event | None:
    """An AGENT_REGISTERED snapshot event for a live agent that matches `flt`, else None.

    An agent offers several capabilities; a capability filter matches when it is one of them
    and the event then names that capability.
    """
    if not is_live_agent(agent.state) or flt.task_id or flt.workflow_id:
        return None
    if flt.capability and flt.capability not in agent.capabilities:
        return None
    event = event_pb2.Event(
        type=event_pb2.EVENT_TYPE_AGENT_REGISTERED,
        agent_id=agent.agent_id,
        capability=flt.capability,
        message=agent_pb2.AgentState.Name(agent.state).removeprefix("AGENT_STATE_"),  # type: ignore[arg-type]
        snapshot=True,
    )
    set_ms(event, "time", agent.heartbeat_ms)
    return event if flt.matches(event) else None


def task_event(task: TaskView, flt: EventFilter) -> event_pb2.Event | None:
    """A snapshot event describing an unfinished task's current state, if it matches `flt`."""
    event_type = _TASK_EVENT.get(task.state)  # type: ignore[call-overload]
    if event_type is None:
        return None
    if task.state == task_pb2.TASK_STATE_PENDING and task.attempt > 0:
        event_type = event_pb2.EVENT_TYPE_TASK_RETRYING
    event = event_pb2.Event(
        type=event_type,
        task_id=task.task_id,
        workflow_id=task.workflow_id,
        step_id=task.step_id,
        agent_id=task.agent_id,
        capability=task.capability,
        task_state=task.state,  # type: ignore[arg-type]
        attempt=task.attempt,
        snapshot=True,
        tenant=task.tenant,
    )
    set_ms(event, "time", task.changed_ms)
    return event if flt.matches(event) else None


async def snapshot_events(
    reader: StateReader, flt: EventFilter, max_tasks: int
) -> AsyncIterator[event_pb2.Event]:
    """Live agents, then unfinished tasks (at most `max_tasks`), filtered by `flt`."""
    async for agent in reader.agents(include_offline=False):
        a_event = agent_event(agent, flt)
        if a_event is not None:
            yield a_event
    if flt.task_id:
        task = await reader.task(flt.task_id)
        tasks = [task] if task is not None else []
        for view in tasks:
            t_event = task_event(view, flt)
            if t_event is not None:
                yield t_event
        return
    async for view in reader.unfinished_tasks(max_tasks, flt.tenant):
        t_event = task_event(view, flt)
        if t_event is not None:
            yield t_event
