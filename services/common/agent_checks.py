"""Edge checks of what an agent declares: registration fields and running task ids.

Shared by the registry (RegisterAgent, SendHeartbeat) and the gateway (AgentService hello), so
an agent is held to the same limits whichever way it connects. `prefix` names the enclosing
message in field violations ("hello." gives "hello.max_concurrency").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.validation import check_capability, check_id, check_labels

MAX_NAME = 128
MAX_CAPABILITIES = 64
MAX_CONCURRENCY = 10_000
MAX_RUNNING_IDS = 10_000


class Declared(Protocol):
    """The registration fields (RegisterAgentRequest, AgentHello)."""

    @property
    def name(self) -> str: ...
    @property
    def capabilities(self) -> Sequence[str]: ...
    @property
    def max_concurrency(self) -> int: ...
    @property
    def labels(self) -> Mapping[str, str]: ...


def validate_registration(request: Declared, prefix: str = "") -> list[str]:
    """Check the registration fields; returns the capabilities without duplicates, in order."""
    if not 1 <= len(request.name) <= MAX_NAME:
        raise InvalidArgument(
            f"{prefix}name must be 1-{MAX_NAME} characters", field=f"{prefix}name"
        )
    if not 1 <= len(request.capabilities) <= MAX_CAPABILITIES:
        raise InvalidArgument(
            f"{prefix}capabilities must list 1-{MAX_CAPABILITIES} names",
            field=f"{prefix}capabilities",
        )
    for i, capability in enumerate(request.capabilities):
        check_capability(capability, f"{prefix}capabilities[{i}]")
    if not 1 <= request.max_concurrency <= MAX_CONCURRENCY:
        raise InvalidArgument(
            f"{prefix}max_concurrency must be between 1 and {MAX_CONCURRENCY}",
            field=f"{prefix}max_concurrency",
        )
    check_labels(request.labels, f"{prefix}labels")
    return list(dict.fromkeys(request.capabilities))


def check_running_ids(task_ids: Sequence[str], field: str = "running_task_ids") -> list[str]:
    """Running task ids (a heartbeat's, a resuming hello's): bounded, each a task id."""
    if len(task_ids) > MAX_RUNNING_IDS:
        raise InvalidArgument(f"{field} lists more than {MAX_RUNNING_IDS} tasks", field=field)
    for i, task_id in enumerate(task_ids):
        check_id(task_id, f"{field}[{i}]")
    return list(dict.fromkeys(task_ids))
