"""Client SDK for the gateway: submit tasks and workflows, wait, list, cancel, stream events."""

from hivewire.client._client import TERMINAL_STATES, Client
from hivewire.client._events import EventStream
from hivewire.client._schedules import OVERLAPS as SCHEDULE_OVERLAPS
from hivewire.client._schedules import schedule_to_dict
from hivewire.client._workflow import (
    command_to_dict,
    step_state_name,
    workflow_state_name,
    workflow_to_dict,
)
from hivewire.core.convert import agent_to_dict, encode_payload, event_to_dict, task_to_dict
from hivewire.core.tls import PLAINTEXT, TlsConfig

__all__ = [
    # The client and its event stream
    "TERMINAL_STATES",
    "Client",
    "EventStream",
    # Transport security: how it dials (default: HIVEWIRE_TLS_* or the discovered config)
    "PLAINTEXT",
    # Schedule overlap policy names (skip, buffer-one, allow-all)
    "SCHEDULE_OVERLAPS",
    "TlsConfig",
    # Conversions: plain dicts for JSON output, payload encoding
    "agent_to_dict",
    "command_to_dict",
    "encode_payload",
    "event_to_dict",
    "schedule_to_dict",
    "step_state_name",
    "task_to_dict",
    "workflow_state_name",
    "workflow_to_dict",
]
